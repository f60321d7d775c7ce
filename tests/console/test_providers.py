"""The providers page: the account's providers in order with circuit, rate limit and
health, never a secret; enable, disable, reset the circuit and the order and rate
limit through the API's own validation; nothing of another account."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from models import Provider, db, utcnow
from tests.support.console import sign_in
from tests.support.db_fixtures import Tenant

SENDGRID = {"name": "sg-main", "kind": "sendgrid", "priority": 1, "config": {"api_key": "SG.secret-value"},
            "max_per_second": 0.5}
SMTP = {"name": "relay", "kind": "smtp", "priority": 2,
        "config": {"host": "93.184.216.34", "port": 587, "username": "u", "password": "smtp-secret", "use_tls": True}}


def _provider(client: Any, tenant: Tenant, body: dict[str, Any]) -> int:
    response = client.post("/api/v1/providers", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def _row(provider_id: int) -> Provider:
    with db.session_scope() as s:
        row = s.get(Provider, provider_id)
        s.expunge(row)
        return row


def test_the_list_shows_each_provider_in_order_with_its_circuit_and_never_a_secret(client: Any, alice: Tenant) -> None:
    relay = _provider(client, alice, SMTP)
    sg = _provider(client, alice, SENDGRID)
    with db.session_scope() as s:
        row = s.get(Provider, relay)
        row.circuit_state, row.consecutive_failures, row.circuit_opened_at = "open", 5, utcnow()
    sign_in(client, alice.api_key)
    page = client.get("/console/providers")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert html.index("sg-main") < html.index("relay")  # tried in priority order
    assert "open (skipped)" in html and "closed" in html
    assert "0.5/s (30.0/min)" in html and "no limit" in html
    assert f"/console/providers/{sg}" in html
    assert "SG.secret-value" not in html and "smtp-secret" not in html
    detail = client.get(f"/console/providers/{relay}").get_data(as_text=True)
    assert "93.184.216.34" in detail and "password</th><td>set (never shown)" in detail
    assert "smtp-secret" not in detail and "Reset the circuit" in detail


def test_an_account_without_providers_is_told_what_to_do(client: Any, alice: Tenant) -> None:
    sign_in(client, alice.api_key)
    html = client.get("/console/providers").get_data(as_text=True)
    assert "No providers yet" in html and "POST /api/v1/providers" in html


def test_another_accounts_provider_is_not_found_and_cannot_be_changed(client: Any, alice: Tenant, bob: Tenant) -> None:
    bobs = _provider(client, bob, SENDGRID)
    token = sign_in(client, alice.api_key)
    assert "sg-main" not in client.get("/console/providers").get_data(as_text=True)
    assert client.get(f"/console/providers/{bobs}").status_code == 404
    for action in ("disable", "reset-circuit", "limits"):
        response = client.post(f"/console/providers/{bobs}/{action}", data={"csrf_token": token, "priority": "5",
                                                                            "weight": "1"})
        assert response.status_code == 404, action
    row = _row(bobs)
    assert row.enabled and row.priority == 1


def test_disable_enable_and_reset_the_circuit_change_the_provider(client: Any, alice: Tenant) -> None:
    pid = _provider(client, alice, SMTP)
    token = sign_in(client, alice.api_key)
    response = client.post(f"/console/providers/{pid}/disable", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == f"/console/providers/{pid}"
    assert _row(pid).enabled is False
    assert client.get("/api/v1/providers", headers=alice.headers).get_json()[0]["enabled"] is False
    page = client.get(f"/console/providers/{pid}").get_data(as_text=True)
    assert "relay is disabled" in page and ">Enable<" in page
    client.post(f"/console/providers/{pid}/enable", data={"csrf_token": token})
    assert _row(pid).enabled is True
    with db.session_scope() as s:
        row = s.get(Provider, pid)
        row.circuit_state, row.consecutive_failures = "open", 7
        row.circuit_opened_at = row.paused_until = utcnow() - timedelta(seconds=5)
    client.post(f"/console/providers/{pid}/reset-circuit", data={"csrf_token": token})
    row = _row(pid)
    assert (row.circuit_state, row.consecutive_failures, row.circuit_opened_at, row.paused_until) == (
        "closed", 0, None, None)
    assert _row(pid).config["password"] == "smtp-secret"  # the secrets stay as they were


def test_order_and_rate_limit_are_saved_and_bad_values_are_named_and_change_nothing(client: Any,
                                                                                    alice: Tenant) -> None:
    pid = _provider(client, alice, SENDGRID)
    token = sign_in(client, alice.api_key)
    bad = client.post(f"/console/providers/{pid}/limits", data={"csrf_token": token, "priority": "-1",
                                                                "weight": "many", "max_per_second": "0"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert 'id="e-priority"' in html and 'id="e-weight"' in html and 'id="e-max_per_second"' in html
    assert "Not a valid integer." in html and 'value="many"' in html
    row = _row(pid)
    assert (row.priority, row.weight, row.max_per_second) == (1, 1, 0.5)
    ok = client.post(f"/console/providers/{pid}/limits", data={"csrf_token": token, "priority": "7",
                                                               "weight": "3", "max_per_second": ""})
    assert ok.status_code == 303
    row = _row(pid)
    assert (row.priority, row.weight, row.max_per_second) == (7, 3, None)
    shown = client.get(f"/api/v1/providers/{pid}", headers=alice.headers).get_json()
    assert (shown["priority"], shown["weight"], shown["max_per_second"]) == (7, 3, None)


def test_a_post_without_the_csrf_token_is_refused(client: Any, alice: Tenant) -> None:
    pid = _provider(client, alice, SENDGRID)
    sign_in(client, alice.api_key)
    assert client.post(f"/console/providers/{pid}/disable").status_code == 400
    assert client.post(f"/console/providers/{pid}/disable", data={"csrf_token": "forged"}).status_code == 400
    assert _row(pid).enabled is True


def test_delete_removes_the_provider_and_its_warming_plan(client: Any, alice: Tenant, bob: Tenant) -> None:
    pid = _provider(client, alice, SMTP)
    plan = client.post("/api/v1/warming-plans", json={"provider_id": pid}, headers=alice.headers)
    assert plan.status_code == 201
    bobs = _provider(client, bob, SMTP)
    token = sign_in(client, alice.api_key)
    assert "and its warming plan? This cannot be undone." in client.get(f"/console/providers/{pid}").get_data(
        as_text=True)
    assert client.post(f"/console/providers/{bobs}/delete", data={"csrf_token": token}).status_code == 404
    response = client.post(f"/console/providers/{pid}/delete", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/console/providers"
    assert client.get(f"/api/v1/providers/{pid}", headers=alice.headers).status_code == 404
    assert client.get("/api/v1/warming-plans", headers=alice.headers).get_json() == []
    assert client.get(f"/api/v1/providers/{bobs}", headers=bob.headers).status_code == 200
