"""The webhook signing secret: shown to its own account only, rotated with a grace
period, sealed at rest, and bad rotation input refused by name."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from models import db

SECRET = "/api/v1/account/webhook-secret"
ROTATE = "/api/v1/account/webhook-secret/rotate"


def shown(client, tenant) -> dict:
    response = client.get(SECRET, headers=tenant.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def stored(account_id: int) -> str | None:
    with db.get_engine().connect() as conn:
        return conn.execute(text("SELECT webhook_secret FROM accounts WHERE id = :id"), {"id": account_id}).scalar()


def test_showing_or_rotating_the_secret_without_credentials_is_401(client, alice):
    assert client.get(SECRET).status_code == 401
    assert client.post(ROTATE, json={}).status_code == 401
    assert client.get(SECRET, headers={"X-API-Key": "esk_not-a-key"}).status_code == 401
    assert client.post(ROTATE, json={}, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401


def test_each_account_sees_its_own_secret_and_never_another_accounts(client, alice, bob):
    a, b = shown(client, alice), shown(client, bob)
    assert a["secret"].startswith("whsec_") and b["secret"].startswith("whsec_")
    assert a["secret"] != b["secret"]
    assert a["previous_expires_at"] is None
    assert shown(client, alice) == a  # the same secret every time it is shown

    rotated = client.post(ROTATE, json={}, headers=bob.headers).get_json()
    assert rotated["secret"] not in (a["secret"], b["secret"])
    assert shown(client, alice) == a  # Bob's rotation is his alone
    assert shown(client, bob)["secret"] == rotated["secret"]


@pytest.mark.committing  # reads the stored column on a connection of its own
def test_the_secret_is_sealed_at_rest_and_not_part_of_the_account(client, alice):
    secret = shown(client, alice)["secret"]
    raw = stored(alice.account_id)
    assert raw.startswith("sealed:") and secret not in raw
    assert secret not in str(client.get("/api/v1/account", headers=alice.headers).get_json())


def test_the_secret_is_answered_uncacheable(client, alice):
    assert "no-store" in client.get(SECRET, headers=alice.headers).headers["Cache-Control"]
    assert "no-store" in client.post(ROTATE, json={}, headers=alice.headers).headers["Cache-Control"]


def test_rotating_answers_a_new_secret_and_when_the_old_one_stops_signing(client, alice):
    old = shown(client, alice)["secret"]
    before = datetime.now().astimezone()
    response = client.post(ROTATE, json={"grace_seconds": 3600}, headers=alice.headers)
    after = datetime.now().astimezone()
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["secret"] != old and body["secret"].startswith("whsec_")
    expires = datetime.fromisoformat(body["previous_expires_at"])
    assert before + timedelta(hours=1) <= expires + timedelta(seconds=1)
    assert expires <= after + timedelta(hours=1)
    assert shown(client, alice) == body


def test_the_grace_period_is_a_day_unless_given_and_zero_ends_it_at_once(client, alice):
    before = datetime.now().astimezone()
    body = client.post(ROTATE, json={}, headers=alice.headers).get_json()
    assert datetime.fromisoformat(body["previous_expires_at"]) >= before + timedelta(hours=24) - timedelta(seconds=1)

    now = client.post(ROTATE, json={"grace_seconds": 0}, headers=alice.headers).get_json()
    assert now["previous_expires_at"] is None and now["secret"] != body["secret"]


@pytest.mark.parametrize("grace", [-1, 7 * 86400 + 1, "a day", 1.5, None, True, [3600]])
def test_a_bad_grace_period_is_refused_naming_the_field_and_nothing_changes(client, alice, grace):
    before = shown(client, alice)
    response = client.post(ROTATE, json={"grace_seconds": grace}, headers=alice.headers)
    assert response.status_code == 422, response.get_json()
    assert set(response.get_json()["errors"]["json"]) == {"grace_seconds"}
    assert "grace_seconds" in response.get_json()["message"]
    assert shown(client, alice) == before


def test_an_unknown_field_in_a_rotation_is_refused_by_name(client, alice):
    response = client.post(ROTATE, json={"grace": 60}, headers=alice.headers)
    assert response.status_code == 422
    assert "grace" in response.get_json()["errors"]["json"]
