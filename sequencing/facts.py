"""What condition and wait_until steps know about a batch's enrollments, read once
per batch instead of up to three queries per enrollment and step.

Read on the first question, for every enrollment of the batch that may ask one:
their emails (by idempotency key) with the events on them, and their subscribers'
custom events. Nothing the walk does changes these before the batch ends (its
messages are inserted after the walk), so one read answers every question. Tags and
attributes come from the subscriber row at the moment of asking: an action earlier
in the walk may have changed them.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Event, Message
from models.event import IMPORTED
from sequencing.conditions import Facts
from sequencing.rows import EnrollmentRow, SubscriberRow


class BatchFacts:
    """Facts for the enrollments given, loaded together when first asked for."""

    def __init__(self, session: Session, enrollments: Iterable[EnrollmentRow]) -> None:
        self._session = session
        self._pending = {e.id: e for e in enrollments}
        self._covered: set[int] = set()
        self._covered_subscribers: set[int] = set()
        self._message_ids: dict[str, int] = {}
        self._message_events: dict[int, set[str]] = defaultdict(set)
        self._events: dict[int, list[tuple[str, datetime, dict[str, Any]]]] = defaultdict(list)

    def facts(self, enrollment: EnrollmentRow, subscriber: SubscriberRow, key_property: str | None) -> Facts:
        if enrollment.id not in self._covered:
            self._load([enrollment, *self._pending.values()])
        sent_keys = {int(pos): key for pos, key in ((enrollment.state or {}).get("sent") or {}).items()}
        by_step = {pos: self._message_ids[key] for pos, key in sent_keys.items() if key in self._message_ids}
        message_events = {mid: set(self._message_events[mid]) for mid in by_step.values()
                          if mid in self._message_events}
        events: dict[str, list[datetime]] = defaultdict(list)
        for name, occurred, properties in self._events.get(subscriber.id, ()):
            if key_property and str((properties or {}).get(key_property)) != enrollment.instance_key:
                continue  # a keyed instance only sees events about its own key
            events[name].append(occurred)
        return Facts(tags=list(subscriber.tags or []), attributes=dict(subscriber.attributes or {}),
                     messages_by_step=by_step, message_events=dict(message_events), events=dict(events))

    def _load(self, enrollments: list[EnrollmentRow]) -> None:
        enrollment_ids = {e.id for e in enrollments} - self._covered
        self._covered |= enrollment_ids
        for eid in enrollment_ids:
            self._pending.pop(eid, None)
        subscriber_ids = {e.subscriber_id for e in enrollments if e.id in enrollment_ids}
        self._load_messages(enrollment_ids, subscriber_ids)
        self._load_events(subscriber_ids - self._covered_subscribers)
        self._covered_subscribers |= subscriber_ids

    def _load_messages(self, enrollment_ids: set[int], subscriber_ids: set[int]) -> None:
        """Emails of these enrollments with the events on them, found through the
        subscriber index (a message's subscriber is its enrollment's). Every key an
        enrollment's state can hold names one of its own messages, so this finds them
        all, even a key written later in the walk that a retried batch had inserted."""
        if not enrollment_ids:
            return
        for key, message_id, name in self._session.execute(
            select(Message.idempotency_key, Message.id, Event.name)
            .outerjoin(Event, Event.message_id == Message.id)
            .where(Message.subscriber_id.in_(subscriber_ids), Message.enrollment_id.in_(enrollment_ids))
        ):
            self._message_ids[key] = message_id
            if name is not None:
                self._message_events[message_id].add(name)

    def _load_events(self, subscriber_ids: set[int]) -> None:
        """The subscribers' custom events (those not about an email)."""
        if not subscriber_ids:
            return
        for subscriber_id, name, occurred, properties in self._session.execute(
            select(Event.subscriber_id, Event.name, Event.occurred_at, Event.properties)
            .where(Event.subscriber_id.in_(subscriber_ids), Event.message_id.is_(None), Event.source != IMPORTED)
        ):
            self._events[subscriber_id].append((name, occurred, properties))
