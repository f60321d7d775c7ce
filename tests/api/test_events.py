"""Custom events: recorded once per client id, trigger sequences, tenant-scoped."""
from __future__ import annotations

import io
import json

import pytest

from sqlalchemy import select

from models import Enrollment, Event, Message, Subscriber, db
from models.base import utcnow
from tests.support import factories
from tests.support.engine import run_due
from tests.support.sending import send_in_process


def test_it_records_an_event_for_a_new_email_and_creates_the_subscriber(client, alice):
    response = client.post("/api/v1/events", json={"email": "New@Example.test", "name": "purchase",
                                                    "properties": {"order": "A1"}, "value": 42.5}, headers=alice.headers)
    assert response.status_code == 202
    body = response.get_json()
    assert body["duplicate"] is False and body["id"] > 0
    with db.session_scope() as s:
        event = s.get(Event, body["id"])
        assert (event.name, event.value, event.properties) == ("purchase", 42.5, {"order": "A1"})


def test_a_retried_event_with_the_same_id_is_recorded_once(client, alice):
    payload = {"email": "a@example.test", "name": "signup", "id": "evt-1"}
    first = client.post("/api/v1/events", json=payload, headers=alice.headers).get_json()
    second = client.post("/api/v1/events", json=payload, headers=alice.headers).get_json()
    assert first["duplicate"] is False and second["duplicate"] is True
    with db.session_scope() as s:
        assert len(s.scalars(select(Event)).all()) == 1


def test_it_names_bad_fields_and_writes_nothing(client, alice):
    for payload, field in [({"name": "x"}, "email"), ({"email": "a@b.test", "subscriber_id": 1, "name": "x"}, "email"),
                           ({"email": "nope", "name": "x"}, "email"), ({"email": "a@b.test", "name": "bad name!"}, "name"),
                           ({"email": "a@b.test", "name": "x", "properties": []}, "properties"),
                           ({"email": "a@b.test", "name": "x", "value": "NaN"}, "value"),
                           ({"email": "a@b.test", "name": "x", "occurred_at": "2026-01-01T00:00:00"}, "occurred_at")]:
        response = client.post("/api/v1/events", json=payload, headers=alice.headers)
        assert response.status_code == 422, payload
        assert field in response.get_json()["errors"]["json"], payload
    with db.session_scope() as s:
        assert s.scalars(select(Event)).all() == []


def test_another_accounts_subscriber_is_not_found(client, alice, bob):
    bobs = client.post("/api/v1/events", json={"email": "b@example.test", "name": "x"}, headers=bob.headers).get_json()
    response = client.post("/api/v1/events", json={"subscriber_id": bobs["subscriber_id"], "name": "x"},
                           headers=alice.headers)
    assert response.status_code == 404
    assert client.post("/api/v1/events", json={"email": "a@b.test", "name": "x"}).status_code == 401


def test_an_event_trigger_starts_one_keyed_instance_per_cart(client, alice):
    factories.sequence(alice.account_id, [{"type": "email", "subject": "Your cart", "text": "x"}],
                       settings={"trigger": {"type": "event", "event": "cart_abandoned", "key_property": "cart_id"}})
    for cart in ("c1", "c2", "c1"):
        client.post("/api/v1/events", json={"email": "shopper@example.test", "name": "cart_abandoned",
                                            "properties": {"cart_id": cart}}, headers=alice.headers)
    with db.session_scope() as s:
        keys = sorted(s.scalars(select(Enrollment.instance_key)))
    assert keys == ["c1", "c2"]


def test_creating_a_subscriber_and_adding_a_tag_start_their_triggered_sequences(client, alice):
    welcome = factories.sequence(alice.account_id, [{"type": "email", "subject": "Welcome", "text": "x"}],
                                 settings={"trigger": {"type": "subscriber_created"}})
    vip = factories.sequence(alice.account_id, [{"type": "email", "subject": "VIP", "text": "x"}],
                             settings={"trigger": {"type": "tag_added", "tag": "vip"}})
    created = client.post("/api/v1/subscribers", json={"email": "new@example.test"}, headers=alice.headers).get_json()
    client.patch(f"/api/v1/subscribers/{created['id']}", json={"tags": ["vip"]}, headers=alice.headers)
    client.patch(f"/api/v1/subscribers/{created['id']}", json={"tags": ["vip", "other"]}, headers=alice.headers)
    with db.session_scope() as s:
        enrolled = sorted(s.scalars(select(Enrollment.sequence_id)))
    assert enrolled == sorted([welcome, vip])


def test_a_nul_character_anywhere_is_a_422_naming_the_field(client, alice):
    response = client.post("/api/v1/events", json={"email": "a@b.test", "name": "x", "properties": {"k": "a\x00b"}},
                           headers=alice.headers)
    assert response.status_code == 422
    assert response.get_json()["errors"]["json"] == {"properties.k": ["NUL characters are not allowed."]}
    with db.session_scope() as s:
        assert s.scalars(select(Event)).all() == []


@pytest.mark.parametrize("media_type", ["application/json", "application/vnd.api+json"])
def test_a_nul_character_in_a_chunked_or_json_suffixed_body_is_a_422_too(client, alice, media_type):
    """Chunked bodies have no Content-Length, and webargs parses every JSON media
    type: neither may carry a NUL past the guard into the database."""
    body = json.dumps({"email": "a@b.test", "name": "x", "properties": {"k": "a\x00b"}}).encode()
    response = client.post("/api/v1/events", input_stream=io.BytesIO(body),
                           headers={**alice.headers, "Content-Type": media_type, "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})  # as gunicorn sets for chunked
    assert response.status_code == 422
    assert response.get_json()["errors"]["json"] == {"properties.k": ["NUL characters are not allowed."]}
    with db.session_scope() as s:
        assert s.scalars(select(Event)).all() == []


def test_a_name_the_platform_records_itself_is_a_422_naming_the_field(client, alice):
    """A client's "bounced" would count in analytics while suppressing no one."""
    for name in ("opened", "clicked", "bounced", "complained", "unsubscribed", "delivered", "sent", "deferred",
                 "rejected", "queued"):
        response = client.post("/api/v1/events", json={"email": "a@b.test", "name": name}, headers=alice.headers)
        assert response.status_code == 422, name
        assert "name" in response.get_json()["errors"]["json"], name
    with db.session_scope() as s:
        assert s.scalars(select(Event)).all() == []
    assert client.post("/api/v1/events", json={"email": "a@b.test", "name": "opened_trial"},
                       headers=alice.headers).status_code == 202


def test_an_event_for_the_punycode_spelling_reaches_the_subscriber_of_the_unicode_spelling(client, alice):
    created = client.post("/api/v1/subscribers", json={"email": "ada@bücher.de"}, headers=alice.headers).get_json()
    for spelling in ("ada@xn--bcher-kva.de", "ADA@XN--BCHER-KVA.DE", "Ada@BÜCHER.de"):
        body = client.post("/api/v1/events", json={"email": spelling, "name": "x"}, headers=alice.headers).get_json()
        assert body["subscriber_id"] == created["id"], spelling
    with db.session_scope() as s:
        assert s.scalars(select(Subscriber.email)).all() == ["ada@bücher.de"]


def test_an_event_for_the_punycode_spelling_of_a_suppressed_address_sends_nothing(client, alice):
    factories.sequence(alice.account_id, [{"type": "email", "subject": "Thanks", "text": "x"}],
                       settings={"trigger": {"type": "event", "event": "purchase"}})
    assert client.post("/api/v1/suppressions", json={"email": "ada@bücher.de"}, headers=alice.headers).status_code == 201
    response = client.post("/api/v1/events", json={"email": "ada@xn--bcher-kva.de", "name": "purchase"},
                           headers=alice.headers)
    assert response.status_code == 202 and response.get_json()["enrolled"] == 1
    queued = run_due(utcnow())
    assert len(queued) == 1
    send_in_process(queued)
    with db.session_scope() as s:
        message = s.get(Message, queued[0])
        assert (message.status, message.to_email) == ("suppressed", "ada@bücher.de")


def test_an_address_that_is_not_one_is_a_422_naming_the_email(client, alice):
    for bad in ("ada@bücher..de", "ada@-bücher.de", "ada@xn--zz.de"):
        response = client.post("/api/v1/events", json={"email": bad, "name": "x"}, headers=alice.headers)
        assert response.status_code == 422, bad
        assert "email" in response.get_json()["errors"]["json"], bad
    with db.session_scope() as s:
        assert s.scalars(select(Subscriber)).all() == []
