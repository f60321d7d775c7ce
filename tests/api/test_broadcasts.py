"""The broadcasts API: validation naming each field, tenant isolation, and the
lifecycle draft -> scheduled (through pre-flight) -> cancelled, with GET's counts."""
from __future__ import annotations

from datetime import timedelta

import pytest

from models import Segment, db
from models.base import utcnow
from tests.support import factories
from tests.support.broadcasts import step, topic_with

CLEAN = {"name": "December", "topic": "news", "subject": "Our December news",
         "text": "Hello, here is what happened this month."}
SPAMMY = {**CLEAN, "subject": "ACT NOW!!! FREE MONEY", "html": "<p>100% free, click here, winner</p>"}


@pytest.fixture
def news(alice):
    """Alice's ``news`` topic with three subscribers."""
    return topic_with(alice.account_id, factories.subscribers(alice.account_id, 3))


def _create(client, tenant, body):
    return client.post("/api/v1/broadcasts", json=body, headers=tenant.headers)


def _errors(response):
    assert response.status_code == 422, response.get_json()
    return response.get_json()["errors"]["json"]


@pytest.mark.parametrize(("body", "field"), [
    ({**CLEAN, "name": ""}, "name"),
    ({k: v for k, v in CLEAN.items() if k != "name"}, "name"),
    ({**CLEAN, "segment_id": 1}, "segment_id"),  # and a topic: two audiences
    ({k: v for k, v in CLEAN.items() if k != "topic"}, "segment_id"),  # no audience
    ({**CLEAN, "topic": "nope"}, "topic"),
    ({**CLEAN, "subject": None}, "subject"),
    ({**CLEAN, "text": None}, "html"),
    ({**CLEAN, "template_id": 999}, "template_id"),
    ({**CLEAN, "local_time": "9am"}, "local_time"),
    ({**CLEAN, "local_time": "24:00"}, "local_time"),
    ({**CLEAN, "best_time": "yes"}, "best_time"),
    ({**CLEAN, "send_at": "tomorrow"}, "send_at"),
    ({**CLEAN, "send_at": "2026-12-24T09:00:00"}, "send_at"),
    ({**CLEAN, "variants": [{"name": "A"}]}, "variants"),
    ({**CLEAN, "variants": [{"name": "A"}, {"subject": "x"}]}, "variants.1.name"),
    ({**CLEAN, "variants": [{"name": "A"}, {"name": "A"}]}, "variants.1.name"),
    ({**CLEAN, "variants": [{"name": "A"}, {"name": "B", "colour": "red"}]}, "variants.1.colour"),
    ({**CLEAN, "test": {"percent": 20}}, "test"),  # a test without variants
    ({**CLEAN, "variants": [{"name": "A"}, {"name": "B"}], "test": {"percent": 60}}, "test.percent"),
    ({**CLEAN, "variants": [{"name": "A"}, {"name": "B"}], "test": {"percent": 0}}, "test.percent"),
    ({**CLEAN, "variants": [{"name": "A"}, {"name": "B"}], "test": {"percent": 10, "metric": "converted"}},
     "test.metric"),
    ({**CLEAN, "variants": [{"name": "A"}, {"name": "B"}], "test": {"percent": 10, "wait_seconds": -1}},
     "test.wait_seconds"),
    ({**CLEAN, "test": "half"}, "test"),
])
def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(client, alice, news, body, field):
    assert field in _errors(_create(client, alice, body))
    assert client.get("/api/v1/broadcasts", headers=alice.headers).get_json() == []


def test_an_unknown_field_is_named(client, alice, news):
    response = _create(client, alice, {**CLEAN, "colour": "red"})
    assert response.status_code == 422 and "colour" in response.get_json()["errors"]["json"]


def test_another_accounts_segment_and_topic_are_not_found(client, alice, bob, news):
    with db.session_scope() as s:
        segment = Segment(account_id=bob.account_id, name="Bob's", filter={"tag": "vip"})
        s.add(segment)
        s.flush()
        bobs_segment = segment.id
    topic_with(bob.account_id, [], key="bobnews")
    assert "segment_id" in _errors(_create(client, alice, {**CLEAN, "topic": None, "segment_id": bobs_segment}))
    assert "topic" in _errors(_create(client, alice, {**CLEAN, "topic": "bobnews"}))


def test_a_draft_is_created_listed_and_changed(client, alice, news):
    response = _create(client, alice, CLEAN)
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "draft" and body["topic"] == "news" and body["winner"] is None
    listed = client.get("/api/v1/broadcasts", headers=alice.headers).get_json()
    assert [b["id"] for b in listed] == [body["id"]]
    patched = client.patch(f"/api/v1/broadcasts/{body['id']}", json={"subject": "New subject", "local_time": "09:30"},
                           headers=alice.headers)
    assert patched.status_code == 200
    assert patched.get_json()["subject"] == "New subject" and patched.get_json()["local_time"] == "09:30"
    assert "local_time" in _errors(client.patch(f"/api/v1/broadcasts/{body['id']}", json={"local_time": "25:00"},
                                                headers=alice.headers))


def test_other_accounts_see_none_of_it(client, alice, bob, news):
    bid = _create(client, alice, CLEAN).get_json()["id"]
    assert client.get("/api/v1/broadcasts", headers=bob.headers).get_json() == []
    assert client.get(f"/api/v1/broadcasts/{bid}", headers=bob.headers).status_code == 404
    assert client.patch(f"/api/v1/broadcasts/{bid}", json={"subject": "x"}, headers=bob.headers).status_code == 404
    assert client.post(f"/api/v1/broadcasts/{bid}/schedule", json={"override_preflight": True},
                       headers=bob.headers).status_code == 404
    assert client.post(f"/api/v1/broadcasts/{bid}/cancel", headers=bob.headers).status_code == 404
    assert client.get(f"/api/v1/broadcasts/{bid}", headers=alice.headers).get_json()["status"] == "draft"


def test_failing_preflight_is_a_409_with_the_report_unless_overridden(client, alice, news):
    bid = _create(client, alice, SPAMMY).get_json()["id"]
    refused = client.post(f"/api/v1/broadcasts/{bid}/schedule", json={}, headers=alice.headers)
    assert refused.status_code == 409
    errors = refused.get_json()["errors"]
    assert "content" in errors["preflight"] and errors["preflight_report"]["passed"] is False
    assert client.get(f"/api/v1/broadcasts/{bid}", headers=alice.headers).get_json()["status"] == "draft"
    scheduled = client.post(f"/api/v1/broadcasts/{bid}/schedule", json={"override_preflight": True},
                            headers=alice.headers)
    assert scheduled.status_code == 200
    assert scheduled.get_json()["status"] == "scheduled" and scheduled.get_json()["preflight_overridden"] is True


def test_scheduled_it_is_sent_counted_and_can_no_longer_be_changed(client, alice, news):
    bid = _create(client, alice, CLEAN).get_json()["id"]
    assert client.post(f"/api/v1/broadcasts/{bid}/schedule", headers=alice.headers).status_code == 200
    assert client.patch(f"/api/v1/broadcasts/{bid}", json={"subject": "x"}, headers=alice.headers).status_code == 409
    assert client.post(f"/api/v1/broadcasts/{bid}/schedule", headers=alice.headers).status_code == 409
    assert step(utcnow() + timedelta(seconds=1)) == "sending"
    body = client.get(f"/api/v1/broadcasts/{bid}", headers=alice.headers).get_json()
    assert body["status"] == "sending" and body["audience_size"] == 3
    assert body["counts"]["default"]["queued"] == 3 and body["counts"]["default"]["sent"] == 0
    cancelled = client.post(f"/api/v1/broadcasts/{bid}/cancel", headers=alice.headers)
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    counts = client.get(f"/api/v1/broadcasts/{bid}", headers=alice.headers).get_json()["counts"]["default"]
    assert counts["queued"] == 0 and counts["suppressed"] == 3
    assert client.post(f"/api/v1/broadcasts/{bid}/cancel", headers=alice.headers).status_code == 409


def test_a_segment_audience_is_its_active_members(client, alice):
    vip = factories.subscribers(alice.account_id, 2, prefix="vip", tags=["vip"])
    factories.subscribers(alice.account_id, 2, prefix="plain")
    factories.subscribers(alice.account_id, 1, prefix="gone", tags=["vip"], status="unsubscribed")
    with db.session_scope() as s:
        segment = Segment(account_id=alice.account_id, name="VIPs", filter={"tag": "vip"})
        s.add(segment)
        s.flush()
        segment_id = segment.id
    bid = _create(client, alice, {**CLEAN, "topic": None, "segment_id": segment_id}).get_json()["id"]
    client.post(f"/api/v1/broadcasts/{bid}/schedule", headers=alice.headers)
    step(utcnow() + timedelta(seconds=1))
    body = client.get(f"/api/v1/broadcasts/{bid}", headers=alice.headers).get_json()
    assert body["audience_size"] == len(vip) == 2


def test_get_shows_the_subject_tests_winner_and_how_it_was_chosen(client, alice):
    from sqlalchemy import select, update

    from analytics.events import record_event
    from models import Message

    topic_with(alice.account_id, factories.subscribers(alice.account_id, 400))
    body = {**CLEAN, "variants": [{"name": "A"}, {"name": "B", "subject": "Better"}],
            "test": {"percent": 50, "metric": "clicked", "wait_seconds": 600}}
    bid = _create(client, alice, body).get_json()["id"]
    client.post(f"/api/v1/broadcasts/{bid}/schedule", headers=alice.headers)
    start = utcnow() + timedelta(seconds=1)
    assert step(start) == "testing"
    shown = client.get(f"/api/v1/broadcasts/{bid}", headers=alice.headers).get_json()
    assert shown["status"] == "testing" and shown["winner"] is None and shown["counts"]["held"]["queued"] > 100
    with db.session_scope() as s:  # the test share went out, and B's readers clicked
        s.execute(update(Message).where(Message.broadcast_id == bid, Message.variant.is_not(None))
                  .values(status="sent"))
        for message_id, subscriber_id in s.execute(select(Message.id, Message.subscriber_id).where(
                Message.broadcast_id == bid, Message.variant == "B")):
            record_event(s, account_id=alice.account_id, subscriber_id=subscriber_id, name="clicked", now=start,
                         message_id=message_id)
    assert step(start + timedelta(seconds=600)) == "sending"
    shown = client.get(f"/api/v1/broadcasts/{bid}", headers=alice.headers).get_json()
    assert shown["winner"] == "B" and shown["decision"]["status"] == "decided"
    assert shown["decision"]["metric"] == "clicked" and "held" not in shown["counts"]
    assert shown["counts"]["B"]["clicked"] == shown["counts"]["B"]["sent"] > 0
    assert shown["counts"]["A"]["clicked"] == 0
