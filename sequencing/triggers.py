"""Enrolling subscribers when something happens: a tag added, a custom event, a
subscriber created.

A sequence's ``settings.trigger`` says what starts it, for an ``active`` subscriber
only (a pending one has not confirmed; an unsubscribed one would be exited at
once), and in a sequence with a ``settings.topic`` only for the topic's members. Event triggers may be keyed
(``key_property``, e.g. ``cart_id``): each distinct key runs its own instance of
the sequence, so a subscriber with two abandoned carts gets two flows, and those
instances only see events that carry their own key.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from audience.topics import members_of
from core.flow import record
from models import Enrollment, Sequence, Subscriber
from models.bulk import insert_ignoring_conflicts
from sequencing.enroll import next_run
from sequencing.holdout import holdout_percent, is_held_out


def _next_run(session: Session, sequence: Sequence, subscriber_id: int, key: str) -> int | None:
    """The run number a new enrollment would get, or None when re-entry forbids it."""
    latest = session.execute(
        select(Enrollment.run, Enrollment.status)
        .where(Enrollment.sequence_id == sequence.id, Enrollment.subscriber_id == subscriber_id,
               Enrollment.instance_key == key)
        .order_by(Enrollment.run.desc()).limit(1)
    ).first()
    return next_run(*(latest or (None, None)), str((sequence.settings or {}).get("reentry", "never")))


def _matching(session: Session, account_id: int, kind: str) -> list[Sequence]:
    candidates = session.scalars(select(Sequence).where(Sequence.account_id == account_id, Sequence.status == "active"))
    return [s for s in candidates if ((s.settings or {}).get("trigger") or {}).get("type") == kind]


def triggered(session: Session, account_id: int, kind: str, *, tag: str | None = None,
              event: str | None = None) -> list[Sequence]:
    """The account's active sequences this happening starts."""
    sequences = []
    for sequence in _matching(session, account_id, kind):
        trigger = sequence.settings["trigger"]
        if kind == "tag_added" and trigger.get("tag") != tag:
            continue
        if kind == "event" and trigger.get("event") != event:
            continue
        sequences.append(sequence)
    return sequences


def enroll_triggered(session: Session, sequences: list[Sequence], account_id: int, subscriber_id: int, kind: str,
                     now: datetime, properties: dict[str, Any] | None = None) -> int:
    """Enroll ``subscriber_id`` into ``sequences`` (from ``triggered``), each as its
    re-entry rule allows; returns how many enrollments were created."""
    if not sequences:
        return 0
    status = session.scalar(select(Subscriber.status).where(Subscriber.id == subscriber_id,
                                                            Subscriber.account_id == account_id))
    if status != "active":
        return 0  # as enrolling by hand: a pending (unconfirmed) or unsubscribed subscriber starts nothing
    rows = []
    for sequence in sequences:
        topic = sequence.settings.get("topic")
        if topic and not members_of(session, account_id, topic, [subscriber_id]):
            continue  # a topic's sequence starts only for its members
        trigger = sequence.settings["trigger"]
        key = ""
        if kind == "event" and trigger.get("key_property"):
            value = (properties or {}).get(trigger["key_property"])
            if value is None:
                continue  # a keyed flow needs its key
            key = str(value)[:200]
        run = _next_run(session, sequence, subscriber_id, key)
        if run is None:
            continue
        rows.append({"account_id": account_id, "sequence_id": sequence.id, "subscriber_id": subscriber_id,
                     "instance_key": key, "run": run, "status": "active", "current_step": 0, "next_run_at": now,
                     "state": {}, "enrolled_at": now, "updated_at": now,
                     "held_out": is_held_out(sequence.id, subscriber_id, holdout_percent(sequence.settings))})
    created = insert_ignoring_conflicts(session, Enrollment, rows, Enrollment.sequence_id)
    record(session, [(account_id, sequence_id, 0, "entered", 1) for sequence_id in created], now)
    return len(created)


def fire(session: Session, account_id: int, subscriber_id: int, kind: str, now: datetime, *,
         tag: str | None = None, event: str | None = None, properties: dict[str, Any] | None = None) -> int:
    """Enroll ``subscriber_id`` into every active sequence this happening triggers;
    returns how many enrollments were created."""
    sequences = triggered(session, account_id, kind, tag=tag, event=event)
    return enroll_triggered(session, sequences, account_id, subscriber_id, kind, now, properties)


def fire_for_new_tags(session: Session, account_id: int, subscriber_id: int, before: list[str] | None,
                      after: list[str] | None, now: datetime) -> int:
    """Fire ``tag_added`` for each tag in ``after`` that was not in ``before``."""
    old = set(before or [])
    return sum(fire(session, account_id, subscriber_id, "tag_added", now, tag=tag)
               for tag in (after or []) if tag not in old)
