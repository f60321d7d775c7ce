"""One provider event the processor chokes on fails alone: the rest of its batch,
other accounts' events included, is recorded."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select

from inbound.store import process_events
from models import Event, InboundEvent, Message, db
from tests.support import factories

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def sent_message(account_id: int, ref: str) -> int:
    [subscriber] = factories.subscribers(account_id, 1, prefix=ref)
    with db.session_scope() as s:
        message = Message(account_id=account_id, subscriber_id=subscriber, idempotency_key=ref, status="sent",
                          to_email=f"{ref}0@example.test", attempts=1, sent_at=NOW, provider="sendgrid",
                          provider_message_id=ref)
        s.add(message)
        s.flush()
        return message.id


def stored_event(account_id: int, ref: str, kind: str, payload: Any) -> int:
    with db.session_scope() as s:
        row = InboundEvent(account_id=account_id, provider="sendgrid", provider_event_id=f"ev-{ref}", kind=kind,
                           message_ref=ref, occurred_at=NOW, payload=payload, status="pending", received_at=NOW)
        s.add(row)
        s.flush()
        return row.id


def test_an_event_that_raises_is_failed_alone_and_the_other_accounts_events_are_recorded():
    good_acct, bad_acct = factories.account("Good"), factories.account("Bad")
    opened = sent_message(good_acct, "good-1")
    sent_message(bad_acct, "bad-1")
    # A stored row whose payload is not the object the processor reads fields of.
    bad = stored_event(bad_acct, "bad-1", "delivered", ["not", "an", "object"])
    good = stored_event(good_acct, "good-1", "opened", {"event": {}, "recipient": "good-10@example.test"})

    with db.session_scope() as s:
        counts = process_events(s, [bad, good], NOW)

    assert counts == {"failed": 1, "processed": 1}
    with db.session_scope() as s:
        assert s.get(InboundEvent, good).status == "processed"
        failed = s.get(InboundEvent, bad)
        assert failed.status == "failed" and "AttributeError" in failed.error
        assert [(e.name, e.message_id) for e in s.scalars(select(Event))] == [("opened", opened)]
    with db.session_scope() as s:  # nothing left pending for the sweep to hand on again
        assert process_events(s, [bad, good], NOW) == {}
