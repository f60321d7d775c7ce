"""Recording events: tracking hits, custom events from the API, platform events.

Every event has one name from one vocabulary (sent, delivered, opened, clicked,
bounced, complained, unsubscribed, or a custom name) and an optional dedup key
under a unique constraint, so a second pixel load or a replayed webhook is a no-op.

Recording says whose waiting enrollments should look again (``Recorded.wake``)
rather than waking them: enrollments are sequencing's, a layer above this one, so
the callers that take in news a sequence may wait on (tracking hits, API events,
provider webhooks) wake them (sequencing.wakeups). Delivery's records of its own
sending (sent, deferred, rejected) wake nobody, as the sent event PostgreSQL
writes with each send (delivery.outbox.mark_sent) never did; a bounce or an
unsubscribe ends the subscriber's enrollments instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Event, Message
from models.bulk import insert_ignoring_conflicts

ENGAGEMENT = ("opened", "clicked")


@dataclass(frozen=True)
class Recorded:
    """A new event (not a replay): its id, and the subscriber whose waiting
    enrollments should be woken so conditions see it at once (None: no subscriber)."""

    event_id: int
    wake: int | None


def record_event(session: Session, *, account_id: int, subscriber_id: int | None, name: str, now: datetime,
                 message_id: int | None = None, dedup_key: str | None = None, source: str = "api",
                 properties: dict[str, Any] | None = None, value: float | None = None,
                 occurred_at: datetime | None = None) -> Recorded | None:
    """Insert one event; None when its dedup key was seen before."""
    ids = insert_ignoring_conflicts(session, Event, [{
        "account_id": account_id, "subscriber_id": subscriber_id, "message_id": message_id, "name": name,
        "dedup_key": dedup_key, "source": source, "properties": properties or {}, "value": value,
        "occurred_at": occurred_at or now, "created_at": now,
    }], Event.id)
    return Recorded(ids[0], subscriber_id) if ids else None


def record_message_event(session: Session, message_id: int, name: str, now: datetime,
                         dedup_suffix: str = "", properties: dict[str, Any] | None = None,
                         source: str = "tracking") -> Recorded | None:
    """An event about one of our messages, de-duplicated per message (and suffix)."""
    row = session.execute(select(Message.account_id, Message.subscriber_id).where(Message.id == message_id)).first()
    if row is None:
        return None
    return record_event(session, account_id=row.account_id, subscriber_id=row.subscriber_id, name=name, now=now,
                        message_id=message_id, dedup_key=f"{name}:{message_id}{dedup_suffix}", source=source,
                        properties=properties)
