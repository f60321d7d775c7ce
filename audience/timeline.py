"""One subscriber's history as one list, newest first: their events, the messages
sent to them and their enrollments, for a profile page.

Each of the three is read newest first with a limit, and the three merged, so a
page costs three indexed queries however long the history is; ``before`` asks for
the entries older than a time (the page's "older" link), not for an offset.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Enrollment, Event, Message, Sequence

KINDS = ("event", "message", "enrollment")


@dataclass(frozen=True)
class Entry:
    kind: str  # one of KINDS
    id: int
    at: datetime
    title: str  # the event's name, the message's subject, the sequence's name
    status: str | None = None
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class Timeline:
    entries: list[Entry]
    older: datetime | None  # pass as ``before`` for the next page; None: nothing older


def _events(session: Session, account_id: int, subscriber_id: int, before: datetime | None, limit: int) -> list[Entry]:
    query = select(Event).where(Event.account_id == account_id, Event.subscriber_id == subscriber_id)
    if before is not None:
        query = query.where(Event.occurred_at < before)
    rows = session.scalars(query.order_by(Event.occurred_at.desc(), Event.id.desc()).limit(limit))
    return [Entry("event", e.id, e.occurred_at, e.name, e.source,
                  {"message_id": e.message_id, "properties": e.properties, "value": e.value}) for e in rows]


def _messages(session: Session, account_id: int, subscriber_id: int, before: datetime | None,
              limit: int) -> list[Entry]:
    query = select(Message).where(Message.account_id == account_id, Message.subscriber_id == subscriber_id)
    if before is not None:
        query = query.where(Message.created_at < before)
    rows = session.scalars(query.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit))
    return [Entry("message", m.id, m.created_at, m.subject or "(no subject)", m.status,
                  {"sequence_id": m.sequence_id, "broadcast_id": m.broadcast_id, "variant": m.variant})
            for m in rows]


def _enrollments(session: Session, account_id: int, subscriber_id: int, before: datetime | None,
                 limit: int) -> list[Entry]:
    query = (select(Enrollment, Sequence.name).join(Sequence, Sequence.id == Enrollment.sequence_id)
             .where(Enrollment.account_id == account_id, Enrollment.subscriber_id == subscriber_id))
    if before is not None:
        query = query.where(Enrollment.enrolled_at < before)
    rows = session.execute(query.order_by(Enrollment.enrolled_at.desc(), Enrollment.id.desc()).limit(limit))
    return [Entry("enrollment", e.id, e.enrolled_at, name, e.status,
                  {"sequence_id": e.sequence_id, "current_step": e.current_step, "exit_reason": e.exit_reason,
                   "completed_at": e.completed_at}) for e, name in rows]


def timeline(session: Session, account_id: int, subscriber_id: int, limit: int = 50,
             before: datetime | None = None) -> Timeline:
    """Up to ``limit`` entries older than ``before`` (or the newest), newest first.
    The caller has checked that the subscriber is the account's; every query also
    filters on ``account_id``."""
    merged = sorted(
        _events(session, account_id, subscriber_id, before, limit + 1)
        + _messages(session, account_id, subscriber_id, before, limit + 1)
        + _enrollments(session, account_id, subscriber_id, before, limit + 1),
        key=lambda e: (e.at, e.id), reverse=True)
    page = merged[:limit]
    if len(merged) <= limit:
        return Timeline(page, None)
    cut = page[-1].at
    if merged[limit].at < cut:
        return Timeline(page, cut)
    # Entries sharing the last one's time straddle the cut: they all go to the next
    # page (asked for before a microsecond after it, the columns' precision) rather
    # than be skipped, unless more than ``limit`` share that one instant.
    kept = [e for e in page if e.at > cut]
    return Timeline(kept, cut + timedelta(microseconds=1)) if kept else Timeline(page, cut)
