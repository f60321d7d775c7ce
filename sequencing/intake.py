"""Custom events posted by clients (``POST /api/v1/events``) and tracking hits on
our emails: record, then let sequences react (triggers start enrollments; exit
goals and waits are woken)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.events import record_event
from delivery.links import record_link_event
from delivery.tracking import Link
from models import Subscriber
from models.bulk import insert_ignoring_conflicts
from sequencing import triggers
from sequencing.wakeups import wake_recorded


class UnknownSubscriberError(LookupError):
    """No subscriber with that id in the caller's account."""


@dataclass(frozen=True)
class Intake:
    event_id: int | None  # None: a replay of an event id seen before
    subscriber_id: int
    enrolled: int


def resolve_subscriber(session: Session, account_id: int, now: datetime, *, subscriber_id: int | None = None,
                       email: str | None = None) -> tuple[int, bool]:
    """(id, created). An unknown email becomes a subscriber, as enrolling by email does.
    ``email`` is in its normal form (audience.fields.normalise_email, which the API's
    schema applies, answering 422 for an address it refuses), so any spelling of an
    address finds the subscriber stored under it."""
    if subscriber_id is not None:
        found = session.scalar(select(Subscriber.id).where(Subscriber.id == subscriber_id,
                                                           Subscriber.account_id == account_id))
        if found is None:
            raise UnknownSubscriberError(subscriber_id)
        return int(found), False
    assert email is not None
    created = insert_ignoring_conflicts(session, Subscriber, [{
        "account_id": account_id, "email": email, "status": "active", "attributes": {}, "tags": [],
        "created_at": now, "updated_at": now}], Subscriber.id)
    if created:
        return int(created[0]), True
    return int(session.scalar(select(Subscriber.id).where(Subscriber.account_id == account_id,
                                                          Subscriber.email == email))), False


def ingest_event(session: Session, account_id: int, name: str, now: datetime, *, subscriber_id: int | None = None,
                 email: str | None = None, properties: dict[str, Any] | None = None, value: float | None = None,
                 occurred_at: datetime | None = None, client_event_id: str | None = None) -> Intake:
    sid, created = resolve_subscriber(session, account_id, now, subscriber_id=subscriber_id, email=email)
    dedup = f"api:{account_id}:{client_event_id}" if client_event_id else None
    recorded = record_event(session, account_id=account_id, subscriber_id=sid, name=name, now=now,
                            dedup_key=dedup, source="api", properties=properties, value=value, occurred_at=occurred_at)
    wake_recorded(session, recorded, now)
    event_id = recorded.event_id if recorded else None
    enrolled = 0
    if event_id is not None:
        if created:
            enrolled += triggers.fire(session, account_id, sid, "subscriber_created", now)
        enrolled += triggers.fire(session, account_id, sid, "event", now, event=name, properties=properties)
    return Intake(event_id, sid, enrolled)


def ingest_link_event(session: Session, link: Link, name: str, now: datetime, dedup_suffix: str = "",
                      properties: dict[str, Any] | None = None) -> int | None:
    """A recipient opened or clicked one of our emails (the tracking endpoints):
    recorded once per message (and suffix) by delivery.links, and the subscriber's
    waiting enrollments woken. The event's id; None for a replay or when the link
    acts on nothing."""
    recorded = record_link_event(session, link, name, now, dedup_suffix=dedup_suffix, properties=properties)
    wake_recorded(session, recorded, now)
    return recorded.event_id if recorded else None
