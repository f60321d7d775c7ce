"""The warming page: plans with today's cap and use per group, the ramp plot with
what was sent, adjustments, pause and resume as the API does them, and a form that
starts a plan with the API's validation next to each field."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from models import WarmingAdjustment, WarmingDay, WarmingPlan, db, utcnow
from tests.support.console import sign_in
from tests.support.db_fixtures import Tenant

SMTP = {"name": "new-ip", "kind": "smtp", "priority": 1, "config": {"host": "93.184.216.34", "port": 587}}
FORM = {"provider_id": "", "start_date": "", "days": "", "start_volume": "", "target_volume": "", "curve": "geometric",
        "schedule": "", "timezone": "UTC", "sending_hours": "", "shares.gmail": "0.4", "shares.yahoo": "0.15",
        "shares.microsoft": "0.25", "shares.other": "0.2"}


def _provider(client: Any, tenant: Tenant, name: str = "new-ip") -> int:
    response = client.post("/api/v1/providers", json={**SMTP, "name": name}, headers=tenant.headers)
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def _plan(client: Any, tenant: Tenant, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/warming-plans", json={"provider_id": _provider(client, tenant), **body},
                           headers=tenant.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _plans() -> int:
    with db.session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(WarmingPlan)) or 0)


def test_a_plan_shows_today_per_group_the_plot_with_what_was_sent_and_its_adjustments(client: Any,
                                                                                      alice: Tenant) -> None:
    start = (utcnow() - timedelta(days=2)).date()
    plan = _plan(client, alice, start_date=start.isoformat())
    with db.session_scope() as s:
        s.add_all([WarmingDay(plan_id=plan["id"], day=1, grp="gmail", cap=20, sent=17, bounced=1),
                   WarmingDay(plan_id=plan["id"], day=2, grp="gmail", cap=30, sent=23),
                   WarmingAdjustment(plan_id=plan["id"], day=2, grp="yahoo", action="hold", from_level=2,
                                     to_level=2, reason="bounce rate 6.1% at or above hold 5%")])
    sign_in(client, alice.api_key)
    listing = client.get("/console/warming").get_data(as_text=True)
    assert f"/console/warming/{plan['id']}" in listing and "new-ip" in listing
    assert "3 of 30" in listing  # day 3 of the default 30
    page = client.get(f"/console/warming/{plan['id']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html and 'data-series="planned"' in html
    assert "Day 1: 17 actual" in html and "Day 2: 23 actual" in html  # what was sent, on the plot
    assert "bounce rate 6.1% at or above hold 5%" in html
    today = client.get(f"/api/v1/warming-plans/{plan['id']}", headers=alice.headers).get_json()["today"]
    for group, figures in today["groups"].items():
        assert f'<th scope="row">{group}</th>' in html
    assert f'<div class="value">{today["cap"]:,}</div>' in html


def test_empty_states_say_what_to_do(client: Any, alice: Tenant) -> None:
    sign_in(client, alice.api_key)
    assert "No warming plans" in client.get("/console/warming").get_data(as_text=True)
    new = client.get("/console/warming/new").get_data(as_text=True)
    assert "this account has none yet" in new and "/console/providers" in new


def test_pause_and_resume_change_the_plan_as_the_api_does(client: Any, alice: Tenant) -> None:
    plan = _plan(client, alice)
    token = sign_in(client, alice.api_key)
    paused = client.post(f"/console/warming/{plan['id']}/pause", data={"csrf_token": token})
    assert paused.status_code == 303
    shown = client.get(f"/api/v1/warming-plans/{plan['id']}", headers=alice.headers).get_json()
    assert shown["status"] == "paused" and shown["today"]["cap"] == 0
    assert [a["action"] for a in shown["adjustments"]] == ["pause"] * 4
    html = client.get(f"/console/warming/{plan['id']}").get_data(as_text=True)
    assert "is paused" in html and ">Resume<" in html and "paused by an operator" in html
    client.post(f"/console/warming/{plan['id']}/resume", data={"csrf_token": token})
    assert client.get(f"/api/v1/warming-plans/{plan['id']}", headers=alice.headers).get_json()["status"] == "warming"


def test_stop_warming_deletes_the_plan_and_keeps_the_provider(client: Any, alice: Tenant, bob: Tenant) -> None:
    plan = _plan(client, alice)
    bobs = _plan(client, bob)
    token = sign_in(client, alice.api_key)
    assert client.post(f"/console/warming/{bobs['id']}/delete", data={"csrf_token": token}).status_code == 404
    response = client.post(f"/console/warming/{plan['id']}/delete", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/console/warming"
    assert client.get("/api/v1/warming-plans", headers=alice.headers).get_json() == []
    assert client.get(f"/api/v1/providers/{plan['provider_id']}", headers=alice.headers).status_code == 200
    assert _plans() == 1  # Bob's


def test_a_plan_is_started_from_the_form(client: Any, alice: Tenant) -> None:
    pid = _provider(client, alice)
    token = sign_in(client, alice.api_key)
    assert f'<option value="{pid}" selected>' in client.get(f"/console/warming/new?provider_id={pid}").get_data(
        as_text=True)
    response = client.post("/console/warming", data={**FORM, "csrf_token": token, "provider_id": str(pid),
                                                      "days": "5", "curve": "custom", "schedule": "10, 20 40 80,160",
                                                      "start_volume": "10", "target_volume": "160",
                                                      "sending_hours": "8, 20", "timezone": "Europe/Paris",
                                                      "allow_overflow": "on"})
    assert response.status_code == 303, response.get_data(as_text=True)
    plans = client.get("/api/v1/warming-plans", headers=alice.headers).get_json()
    assert len(plans) == 1 and response.headers["Location"] == f"/console/warming/{plans[0]['id']}"
    plan = plans[0]
    assert [d["volume"] for d in plan["schedule"]] == [10, 20, 40, 80, 160]
    assert plan["settings"]["sending_hours"] == [8, 20] and plan["settings"]["timezone"] == "Europe/Paris"
    assert plan["allow_overflow"] is True and plan["provider_id"] == pid


def test_bad_plans_show_the_apis_messages_by_the_field_and_write_nothing(client: Any, alice: Tenant,
                                                                        bob: Tenant) -> None:
    pid = _provider(client, alice)
    bobs = _provider(client, bob)
    token = sign_in(client, alice.api_key)
    cases = [({"days": "0"}, "days", "Must be an integer from 1"),
             ({"days": "thirty"}, "days", "Not a valid integer."),
             ({"start_volume": "500", "target_volume": "100"}, "target_volume", "at least start_volume"),
             ({"curve": "custom"}, "schedule", "needs a day-by-day table"),
             ({"curve": "custom", "days": "3", "schedule": "10, x, 30"}, "schedule", "1: Not a valid integer."),
             ({"shares.gmail": "0.9"}, "shares", "they must add up to 1"),
             ({"shares.yahoo": "-1"}, "shares.yahoo", "Must be a share from 0 to 1."),
             ({"timezone": "Mars/Olympus"}, "timezone", "Not a known IANA timezone."),
             ({"sending_hours": "20, 8"}, "sending_hours", "0 &lt;= start &lt; end &lt;= 24"),
             ({"start_date": "yesterday"}, "start_date", "Not a valid date."),
             ({"provider_id": str(bobs)}, "provider_id", "No such provider in this account."),
             ({"provider_id": ""}, "provider_id", "Not a valid integer.")]
    for change, field, message in cases:
        response = client.post("/console/warming", data={**FORM, "csrf_token": token, "provider_id": str(pid),
                                                         **change})
        html = response.get_data(as_text=True)
        assert response.status_code == 422, (change, html)
        assert f'id="e-{field}">' in html, (change, html)
        error = html.split(f'id="e-{field}">', 1)[1].split("</p>", 1)[0]
        assert message in error, (change, error)
    assert _plans() == 0


def test_a_second_plan_for_a_provider_is_refused_by_the_field(client: Any, alice: Tenant) -> None:
    plan = _plan(client, alice)
    token = sign_in(client, alice.api_key)
    response = client.post("/console/warming", data={**FORM, "csrf_token": token,
                                                     "provider_id": str(plan["provider_id"])})
    assert response.status_code == 409
    assert "This provider already has a warming plan." in response.get_data(as_text=True)
    assert _plans() == 1


def test_another_accounts_plan_is_not_found_and_keeps_warming(client: Any, alice: Tenant, bob: Tenant) -> None:
    bobs = _plan(client, bob)
    token = sign_in(client, alice.api_key)
    assert client.get(f"/console/warming/{bobs['id']}").status_code == 404
    assert client.post(f"/console/warming/{bobs['id']}/pause", data={"csrf_token": token}).status_code == 404
    assert "No warming plans" in client.get("/console/warming").get_data(as_text=True)
    assert client.get(f"/api/v1/warming-plans/{bobs['id']}", headers=bob.headers).get_json()["status"] == "warming"


def test_a_post_without_the_csrf_token_is_refused(client: Any, alice: Tenant) -> None:
    plan = _plan(client, alice)
    sign_in(client, alice.api_key)
    assert client.post(f"/console/warming/{plan['id']}/pause").status_code == 400
    assert client.post("/console/warming", data={**FORM, "provider_id": str(plan["provider_id"])}).status_code == 400
    assert client.get(f"/api/v1/warming-plans/{plan['id']}", headers=alice.headers).get_json()["status"] == "warming"
