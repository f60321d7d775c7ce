"""Event subscriptions end to end in process: recorded events are batched by the
feed (webhooks.event_feed), called and recorded (webhooks.event_calls, outbound)
against a real HTTP receiver on loopback, which checks every call with the
documented signature check (scripts/verify_webhook_example.verify). Time is
injected by calling claim -> call -> record directly."""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update

from analytics.events import record_event
from models import Event, EventDelivery, db
from models.base import utcnow
from models.event import IMPORTED
from scripts.verify_webhook_example import verify
from tests.support import factories
from tests.support.engine import run_due
from tests.support.provider_server import ProviderServer
from webhooks import event_calls, event_feed, outbound
from webhooks.event_subscriptions import create_subscription

SECRET_KEY = "unused: subscriptions sign with their own secret"


@pytest.fixture
def receiver() -> Iterator[ProviderServer]:
    server = ProviderServer()
    server.start()
    yield server
    server.stop()


def _subscribe(account_id: int, url: str, events: list[str]) -> tuple[int, str]:
    with db.session_scope() as s:
        row, secret = create_subscription(s, account_id, {"url": url, "events": events}, True, utcnow())
        return row.id, secret


def _record(account_id: int, subscriber_id: int | None, name: str, source: str = "api", **extra: Any) -> int:
    with db.session_scope() as s:
        recorded = record_event(s, account_id=account_id, subscriber_id=subscriber_id, name=name, now=utcnow(),
                                source=source, **extra)
        assert recorded is not None
        return recorded.event_id


def _feed(subscription_id: int, batch: int = event_feed.BATCH) -> list[int]:
    with db.session_scope() as s:
        return event_feed.feed(s, subscription_id, utcnow(), batch=batch)


def _deliver(ids: list[int], now=None, allow_private: bool = True) -> list[outbound.CallResult]:
    now = now or utcnow()
    with db.session_scope() as s:
        calls = event_calls.claim(s, ids, now)
    results = [outbound.call(c, SECRET_KEY, now, allow_private) for c in calls]
    with db.session_scope() as s:
        event_calls.record(s, results, now)
    return results


def _posted(receiver: ProviderServer) -> list[dict[str, Any]]:
    """The bodies received, in the order of their first event (calls may go in any order)."""
    return sorted((json.loads(r.body) for r in receiver.requests), key=lambda b: int(b["events"][0]["id"].split("_")[1]))


def test_each_event_is_delivered_once_batched_and_signed_and_imported_history_never(receiver):
    acct = factories.account()
    people = factories.subscribers(acct, 4)
    sid, secret = _subscribe(acct, receiver.base_url + "/hook", ["message.sent", "message.opened"])
    wanted = [_record(acct, p, name) for p in people for name in ("sent", "opened")]
    _record(acct, people[0], "opened", source=IMPORTED)  # history from elsewhere
    _record(acct, people[0], "pageview")  # not subscribed to (and no sequence's goal)
    _record(acct, people[0], "clicked")  # not subscribed to
    batches = _feed(sid, batch=3)
    assert len(batches) == 3
    assert _feed(sid, batch=3) == [], "a second run finds nothing new"
    _deliver(batches)
    assert len(receiver.requests) == 3
    for request in receiver.requests:
        assert verify(secret, request.headers["X-Eseq-Signature"], request.body)
        assert request.headers["Content-Type"] == "application/json"
    events = [e for body in _posted(receiver) for e in body["events"]]
    assert [len(body["events"]) for body in _posted(receiver)] == [3, 3, 2]
    assert [e["id"] for e in events] == [f"evt_{i}" for i in wanted]
    assert {e["type"] for e in events} == {"message.sent", "message.opened"}
    assert events[0]["data"]["email"] == "user0@example.test" and events[0]["occurred_at"]
    _deliver(batches)  # delivered batches are not called again
    assert len(receiver.requests) == 3
    with db.session_scope() as s:
        assert set(s.scalars(select(EventDelivery.status))) == {"delivered"}
        kept = [e for p in s.scalars(select(EventDelivery.payload)) for e in p["events"]]
        assert sorted(kept, key=lambda e: e["id"]) == sorted(({"id": e["id"], "type": e["type"]} for e in events),
                                                             key=lambda e: e["id"]), "delivered: ids and types only"


def test_a_500_is_retried_after_backoff_with_the_same_event_ids_then_delivered(receiver):
    acct = factories.account()
    [person] = factories.subscribers(acct, 1)
    sid, secret = _subscribe(acct, receiver.base_url + "/hook", ["message.bounced"])
    _record(acct, person, "bounced")
    [batch] = _feed(sid)
    receiver.answer(500)
    now = utcnow()
    [failed] = _deliver([batch], now)
    assert failed.status == 500
    with db.session_scope() as s:
        row = s.get(EventDelivery, batch)
        assert (row.status, row.attempts, row.response_status) == ("deferred", 1, 500)
        retry_at = row.retry_at
    assert retry_at > now + timedelta(seconds=20)
    assert _deliver([batch], now + timedelta(seconds=1)) == [], "not due before its backoff"
    receiver.answer(200)
    with db.session_scope() as s:
        assert event_calls.claim_for_dispatch(s, retry_at + timedelta(seconds=1), 100, timedelta(seconds=60)) == [batch]
    _deliver([batch], retry_at + timedelta(seconds=2))
    first, second = _posted(receiver)
    assert first == second, "the retry carries the same events, ids included"
    assert verify(secret, receiver.last.headers["X-Eseq-Signature"], receiver.last.body,
                  now=(retry_at + timedelta(seconds=2)).timestamp())
    with db.session_scope() as s:
        row = s.get(EventDelivery, batch)
        assert (row.status, row.attempts) == ("delivered", 2)


def test_a_batch_is_given_up_after_the_bound_and_stays_visible(receiver):
    acct = factories.account()
    [person] = factories.subscribers(acct, 1)
    sid, _ = _subscribe(acct, receiver.base_url + "/hook", ["message.sent"])
    _record(acct, person, "sent")
    [batch] = _feed(sid)
    with db.session_scope() as s:
        s.execute(update(EventDelivery).values(attempts=outbound.MAX_ATTEMPTS - 1))
    receiver.answer(503)
    _deliver([batch])
    with db.session_scope() as s:
        row = s.get(EventDelivery, batch)
        assert (row.status, row.error) == ("failed", "HTTP 503")


def test_the_url_is_guarded_again_at_send(receiver):
    acct = factories.account()
    [person] = factories.subscribers(acct, 1)
    sid, _ = _subscribe(acct, receiver.base_url + "/hook", ["message.sent"])
    _record(acct, person, "sent")
    [batch] = _feed(sid)
    [result] = _deliver([batch], allow_private=False)
    assert result.permanent and "non-public" in (result.error or "")
    assert receiver.requests == []


def test_events_recorded_before_the_subscription_are_not_delivered_and_goals_are_conversions(receiver):
    acct = factories.account()
    [person] = factories.subscribers(acct, 1)
    factories.sequence(acct, [{"type": "email", "subject": "s", "text": "t"}],
                       settings={"goal": {"event": "purchase", "within_days": 7}})
    _record(acct, person, "purchase", value=5.0)
    sid, _ = _subscribe(acct, receiver.base_url + "/hook", ["conversion"])
    later = _record(acct, person, "purchase", value=42.0)
    _deliver(_feed(sid))
    [body] = _posted(receiver)
    [event] = body["events"]
    assert event["id"] == f"evt_{later}" and event["type"] == "conversion"
    assert event["data"]["event"] == "purchase" and event["data"]["value"] == 42.0
    assert len(event["data"]["sequence_ids"]) == 1


def test_an_event_committing_late_with_a_lower_id_is_not_skipped(receiver):
    """The rollups' horizon: an event whose transaction is still open holds the
    cursor back, so the later-committed, lower-id event is read after it commits."""
    acct = factories.account()
    [person] = factories.subscribers(acct, 1)
    sid, _ = _subscribe(acct, receiver.base_url + "/hook", ["message.opened"])
    slow = db.get_engine().connect()
    try:
        transaction = slow.begin()
        slow.execute(text("INSERT INTO events (account_id, subscriber_id, name, source, properties, occurred_at,"
                          " created_at) VALUES (:a, :s, 'opened', 'tracking', '{}', now(), now())"),
                     {"a": acct, "s": person})
        quick = _record(acct, person, "opened")
        assert _feed(sid) == [], "nothing past an open transaction's events is read yet"
        transaction.commit()
    finally:
        slow.close()
    _deliver(_feed(sid))
    with db.session_scope() as s:
        slow_id = s.scalar(select(Event.id).where(Event.id != quick))
    assert slow_id < quick
    assert sorted(e["id"] for body in _posted(receiver) for e in body["events"]) == sorted(
        [f"evt_{slow_id}", f"evt_{quick}"])


def test_completed_enrollments_are_delivered_once_each_from_the_engines_step_transitions(receiver):
    acct = factories.account()
    people = factories.subscribers(acct, 3)
    seq = factories.sequence(acct, [{"type": "email", "subject": "Only", "text": "one"}])
    other = factories.sequence(acct, [{"type": "delay", "seconds": 3600}])
    sid, secret = _subscribe(acct, receiver.base_url + "/hook", ["enrollment.completed"])
    now = utcnow()
    enrollments = factories.enroll(acct, seq, people, now)
    factories.enroll(acct, other, people[:1], now)  # waits: not completed
    run_due(now)
    _deliver(_feed(sid))
    assert _feed(sid) == []
    [body] = _posted(receiver)
    assert verify(secret, receiver.last.headers["X-Eseq-Signature"], receiver.last.body)
    assert [(e["type"], e["data"]["enrollment_id"], e["data"]["sequence_id"]) for e in body["events"]] == [
        ("enrollment.completed", e, seq) for e in enrollments]
    assert [e["data"]["email"] for e in body["events"]] == [f"user{i}@example.test" for i in range(3)]
    assert len({e["id"] for e in body["events"]}) == 3


def test_a_failed_batch_can_be_sent_again_by_its_account_only(receiver, client, alice, bob):
    [person] = factories.subscribers(alice.account_id, 1)
    sid, _ = _subscribe(alice.account_id, receiver.base_url + "/hook", ["message.sent"])
    _record(alice.account_id, person, "sent")
    [batch] = _feed(sid)
    receiver.answer(400)  # refused: failed at once
    _deliver([batch])
    retry = f"/api/v1/event-subscriptions/{sid}/deliveries/{batch}/retry"
    assert client.post(retry, headers=bob.headers).status_code == 404
    assert client.post(f"/api/v1/event-subscriptions/{sid}/deliveries/{batch + 1}/retry",
                       headers=alice.headers).status_code == 404
    response = client.post(retry, headers=alice.headers)
    assert response.status_code == 202, response.get_json()
    assert (response.get_json()["status"], response.get_json()["attempts"]) == ("queued", 0)
    receiver.answer(200)
    _deliver([batch])
    first, second = [json.loads(r.body) for r in receiver.requests]
    assert first == second, "the same events, ids included"
    assert client.post(retry, headers=alice.headers).status_code == 409
    shown = client.get(f"/api/v1/event-subscriptions/{sid}", headers=alice.headers).get_json()
    assert shown["deliveries"] == {"delivered": 1, "events_delivered": 1}
