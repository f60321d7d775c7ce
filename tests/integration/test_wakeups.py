"""News a sequence may wait on wakes the subscriber's waiting enrollments at once
(sequencing.wakeups), whichever way it arrives: a tracking hit, an event posted
through the API, a provider's webhook. The event recorder only names whom to wake;
these check that each way in does the waking."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import select

from delivery.tracking import Tracker
from inbound.store import process_events
from models import Enrollment, InboundEvent, Message, db
from models.base import utcnow
from tests.support import factories
from tests.support.engine import run_due

WAIT = {"type": "wait_until", "until": {"opened": True}, "timeout_seconds": 86_400, "on_timeout_goto": 2}


def waiting_after_an_email(account_id: int, wait: dict) -> tuple[int, int, int]:
    """An enrollment that got its email and now sleeps in ``wait`` (which looks
    again every few minutes): (enrollment, message, subscriber)."""
    [subscriber] = factories.subscribers(account_id, 1)
    sequence = factories.sequence(account_id, [{"type": "email", "subject": "Hi", "text": "x"}, wait,
                                               {"type": "action", "action": "exit"}])
    [enrollment] = factories.enroll(account_id, sequence, [subscriber], utcnow() - timedelta(minutes=5))
    [message] = run_due(utcnow())
    assert next_run_at(enrollment) > utcnow() + timedelta(minutes=1), "asleep in the wait"
    return enrollment, message, subscriber


def next_run_at(enrollment_id: int):  # type: ignore[no-untyped-def]
    with db.session_scope() as s:
        return s.scalar(select(Enrollment.next_run_at).where(Enrollment.id == enrollment_id))


def test_an_open_of_the_email_wakes_the_enrollment_waiting_for_it(client, settings):
    account = factories.account()
    enrollment, message, _ = waiting_after_an_email(account, WAIT)
    pixel = urlsplit(Tracker(settings.secret_key, settings.public_base_url).open_url(account, message)).path
    assert client.get(pixel).status_code == 200
    assert next_run_at(enrollment) <= utcnow()


def test_a_click_in_the_email_wakes_the_enrollment_waiting_for_it(client, settings):
    wait = {**WAIT, "until": {"clicked": True}}
    account = factories.account()
    enrollment, message, _ = waiting_after_an_email(account, wait)
    tracker = Tracker(settings.secret_key, settings.public_base_url)
    link = urlsplit(tracker.click_url(account, message, "https://a.test/")).path
    assert client.get(link).status_code == 302
    assert next_run_at(enrollment) <= utcnow()


def test_an_event_posted_through_the_api_wakes_the_enrollment_waiting_for_it(client, alice):
    wait = {**WAIT, "until": {"event": "purchase"}}
    enrollment, _, subscriber = waiting_after_an_email(alice.account_id, wait)
    response = client.post("/api/v1/events", json={"subscriber_id": subscriber, "name": "purchase"},
                           headers=alice.headers)
    assert response.status_code == 202
    assert next_run_at(enrollment) <= utcnow()


def test_a_providers_open_event_wakes_the_enrollment_waiting_for_it():
    account = factories.account()
    enrollment, message, _ = waiting_after_an_email(account, WAIT)
    with db.session_scope() as s:
        key = s.scalar(select(Message.idempotency_key).where(Message.id == message))
        row = InboundEvent(account_id=account, provider="sendgrid", provider_event_id="sg-open-1", kind="opened",
                           message_key=key, occurred_at=utcnow())
        s.add(row)
        s.flush()
        ids = [row.id]
    with db.session_scope() as s:
        assert process_events(s, ids, utcnow()) == {"processed": 1}
    assert next_run_at(enrollment) <= utcnow()


def test_a_replayed_event_wakes_nobody(client, alice):
    wait = {**WAIT, "until": {"event": "purchase"}}
    enrollment, _, subscriber = waiting_after_an_email(alice.account_id, wait)
    payload = {"subscriber_id": subscriber, "name": "purchase", "id": "evt-1"}
    assert client.post("/api/v1/events", json=payload, headers=alice.headers).get_json()["duplicate"] is False
    asleep_again = utcnow() + timedelta(hours=5)
    with db.session_scope() as s:
        s.get(Enrollment, enrollment).next_run_at = asleep_again
    assert client.post("/api/v1/events", json=payload, headers=alice.headers).get_json()["duplicate"] is True
    assert next_run_at(enrollment) == asleep_again
