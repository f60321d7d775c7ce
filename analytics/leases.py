"""The queue-and-lease life of a cached answer the analytics pool recomputes
(sequence_cache, attribution_cache): a request marks a row ``queued``, one worker
claims it for a lease, a failure is kept on the row, and rows asked for but not
taken up are found for beat to hand on. ``row`` is the WHERE clause naming the row(s);
the table has ``status``, ``requested_at``, ``claimed_until`` and ``error``."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, update
from sqlalchemy.orm import Session


def request(session: Session, model: Any, row: ColumnElement[bool], now: datetime) -> bool:
    """Mark the row wanted again; True when the caller should enqueue the recompute,
    False when one is queued or running already (its lease not lapsed)."""
    return bool(session.execute(update(model).where(
        row, or_(model.status.in_(("ready", "failed")), model.claimed_until < now))
        .values(status="queued", requested_at=now, claimed_until=None)).rowcount)


def claim(session: Session, model: Any, row: ColumnElement[bool], now: datetime, lease: timedelta) -> bool:
    """Take the recompute for ``lease``; False when another worker holds it or nothing asked for it."""
    return bool(session.execute(update(model).where(row, waiting(model, now))
                                .values(status="computing", claimed_until=now + lease)).rowcount)


def fail(session: Session, model: Any, row: ColumnElement[bool], error: str) -> None:
    """The recompute failed: the last answer keeps being served, the error kept for the operator."""
    session.execute(update(model).where(row).values(status="failed", claimed_until=None, error=error[:2000]))


def waiting(model: Any, now: datetime) -> ColumnElement[bool]:
    """Rows asked for and not taken up, or abandoned by a dead worker (its lease lapsed)."""
    return or_(model.status == "queued", (model.status == "computing") & (model.claimed_until < now))
