"""Recording events: tracking hits, custom events from the API, platform events.

Every event has one name from one vocabulary (sent, delivered, opened, clicked,
bounced, complained, unsubscribed, or a custom name) and an optional dedup key
under a unique constraint, so a second pixel load or a replayed webhook is a no-op.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Event, Message
from models.bulk import insert_ignoring_conflicts
from sequencing.wakeups import wake_subscriber

ENGAGEMENT = ("opened", "clicked")


def record_event(session: Session, *, account_id: int, subscriber_id: int | None, name: str, now: datetime,
                 message_id: int | None = None, dedup_key: str | None = None, source: str = "api",
                 properties: dict[str, Any] | None = None, value: float | None = None,
                 occurred_at: datetime | None = None) -> int | None:
    """Insert one event; None when its dedup key was seen before. Waiting
    enrollments of the subscriber are woken so conditions see it at once."""
    ids = insert_ignoring_conflicts(session, Event, [{
        "account_id": account_id, "subscriber_id": subscriber_id, "message_id": message_id, "name": name,
        "dedup_key": dedup_key, "source": source, "properties": properties or {}, "value": value,
        "occurred_at": occurred_at or now, "created_at": now,
    }], Event.id)
    if ids and subscriber_id is not None:
        wake_subscriber(session, subscriber_id, now)
    return ids[0] if ids else None


def record_message_event(session: Session, message_id: int, name: str, now: datetime,
                         dedup_suffix: str = "", properties: dict[str, Any] | None = None,
                         source: str = "tracking") -> int | None:
    """An event about one of our messages, de-duplicated per message (and suffix)."""
    row = session.execute(select(Message.account_id, Message.subscriber_id).where(Message.id == message_id)).first()
    if row is None:
        return None
    return record_event(session, account_id=row.account_id, subscriber_id=row.subscriber_id, name=name, now=now,
                        message_id=message_id, dedup_key=f"{name}:{message_id}{dedup_suffix}", source=source,
                        properties=properties)
