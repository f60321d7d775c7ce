"""The event subscriptions API: validation naming the field, the SSRF guard at
save, the secret shown once and never again, tenant isolation."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from models import EventSubscription, db

URL = "/api/v1/event-subscriptions"
PUBLIC = "http://93.184.216.34/hooks/eseq"  # an address literal: no lookup, and public
EVENTS = ["message.sent", "message.opened"]


def _create(client, tenant, **body):
    return client.post(URL, json={"url": PUBLIC, "events": EVENTS, **body}, headers=tenant.headers)


def test_creating_answers_the_generated_secret_once_and_never_again(client, alice, caplog):
    caplog.set_level(logging.DEBUG)
    response = _create(client, alice)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    assert body["events"] == sorted(EVENTS) and body["url"] == PUBLIC and body["paused"] is False
    shown_later = [client.get(f"{URL}/{body['id']}", headers=alice.headers),
                   client.get(URL, headers=alice.headers),
                   client.patch(f"{URL}/{body['id']}", json={"paused": True}, headers=alice.headers)]
    for later in shown_later:
        assert later.status_code == 200
        assert secret not in later.get_data(as_text=True)
        assert "secret" not in str(later.get_json())
    assert secret not in caplog.text


def test_a_given_secret_is_used_and_stored_sealed_when_keys_are_set(client, alice):
    response = _create(client, alice, secret="a-secret-of-mine-1234")
    assert response.status_code == 201 and response.get_json()["secret"] == "a-secret-of-mine-1234"
    with db.session_scope() as s:
        stored = s.execute(text("SELECT secret FROM event_subscriptions")).scalar_one()
        assert s.get(EventSubscription, response.get_json()["id"]).secret == "a-secret-of-mine-1234"
    from models.sealed import sealing
    assert (stored != "a-secret-of-mine-1234") == sealing()


@pytest.mark.parametrize("body, field", [
    ({"events": []}, "events"),
    ({"events": ["message.sent", "message.exploded"]}, "events.1"),
    ({"events": "message.sent"}, "events"),
    ({"url": "ftp://example.com/x"}, "url"),
    ({"url": "http://user:pw@93.184.216.34/"}, "url"),
    ({"url": ""}, "url"),
    ({"secret": "short"}, "secret"),
])
def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(client, alice, body, field):
    response = _create(client, alice, **body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]["json"], response.get_json()
    with db.session_scope() as s:
        assert s.execute(text("SELECT count(*) FROM event_subscriptions")).scalar() == 0


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "http://169.254.169.254/latest/meta-data",
                                 "http://10.0.0.5/hook", "http://[::1]/hook", "http://[::ffff:127.0.0.1]/x"])
def test_private_loopback_and_metadata_targets_are_refused_at_save(client, alice, url):
    response = _create(client, alice, url=url)
    assert response.status_code == 422
    assert "url" in response.get_json()["errors"]["json"]
    created = _create(client, alice).get_json()["id"]
    changed = client.patch(f"{URL}/{created}", json={"url": url}, headers=alice.headers)
    assert changed.status_code == 422 and "url" in changed.get_json()["errors"]["json"]
    assert client.get(f"{URL}/{created}", headers=alice.headers).get_json()["url"] == PUBLIC


def test_another_accounts_subscription_is_a_404_everywhere(client, alice, bob):
    sid = _create(client, alice).get_json()["id"]
    for method, path, body in [("get", f"{URL}/{sid}", None), ("patch", f"{URL}/{sid}", {"paused": True}),
                               ("delete", f"{URL}/{sid}", None), ("get", f"{URL}/{sid}/deliveries", None)]:
        response = getattr(client, method)(path, json=body, headers=bob.headers)
        assert response.status_code == 404, (method, path)
    assert client.get(URL, headers=bob.headers).get_json() == []
    assert [s["id"] for s in client.get(URL, headers=alice.headers).get_json()] == [sid]
    assert client.get(f"{URL}/{sid}", headers=alice.headers).get_json()["paused"] is False


def test_changing_and_deleting(client, alice):
    sid = _create(client, alice).get_json()["id"]
    changed = client.patch(f"{URL}/{sid}", json={"events": ["conversion", "message.bounced", "conversion"]},
                           headers=alice.headers)
    assert changed.status_code == 200 and changed.get_json()["events"] == ["conversion", "message.bounced"]
    assert client.get(f"{URL}/{sid}/deliveries", headers=alice.headers).get_json() == []
    assert client.delete(f"{URL}/{sid}", headers=alice.headers).status_code == 204
    assert client.get(f"{URL}/{sid}", headers=alice.headers).status_code == 404
