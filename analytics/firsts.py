"""Pruning ``rollup_firsts``: the "first open (click, ...) of this message" pairs
that make unique counts exact grow by a few rows per message forever; the pairs of
messages older than ``analytics.rollups.FIRSTS_DAYS`` (400 days) are dropped.

The fold never creates or consults a pair for a message that old (an event of it
counts in ``total`` only), so a dropped pair can never be missed: the prune keeps a
day's margin over the fold's horizon, which only a fold whose clock is a day behind
this one could cross. Messages are found by id: ids grow with ``created_at`` (both
come from the insert), so the first id created after the cutoff is found by a
binary search of primary-key probes, and the pairs below it go by a range of the
pairs' unique index (``message_id, metric``), in chunks, each its own transaction
in the caller's hands. Pairs of deleted messages below that id go with them.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from analytics.rollups import FIRSTS_DAYS
from core.redispatch import timed_text

MARGIN = timedelta(days=1)
CHUNK = 20_000


def first_message_at_or_after(session: Session, moment: datetime) -> int | None:
    """The lowest message id created at or after ``moment`` (ids grow with
    ``created_at``), by a binary search of primary-key probes; one past the highest
    id when every message is older, None when there are none. The firsts' prune and
    retention's message bodies both cut the table at a time this way."""
    low, high = session.execute(text("SELECT min(id), max(id) FROM messages")).one()
    if low is None:
        return None
    probe = timed_text("SELECT created_at < :moment FROM messages WHERE id >= :id ORDER BY id LIMIT 1", "moment")
    high += 1  # invariant: every id below ``low`` is older; ``high`` is not, or past the end
    while low < high:
        middle = (low + high) // 2
        if session.execute(probe, {"moment": moment, "id": middle}).scalar():
            low = middle + 1
        else:
            high = middle
    return int(low)


def first_young_message(session: Session, now: datetime) -> int | None:
    """The lowest message id created at or after the prune's cutoff, or one past the
    highest id when every message is older; None when there are no messages."""
    return first_message_at_or_after(session, now - timedelta(days=FIRSTS_DAYS) - MARGIN)


def prune_firsts(session: Session, below: int, limit: int = CHUNK) -> int:
    """Drop up to ``limit`` pairs of messages with an id below ``below``; the number dropped."""
    return int(session.execute(text(
        "DELETE FROM rollup_firsts WHERE id IN (SELECT id FROM rollup_firsts WHERE message_id < :below LIMIT :limit)"),
        {"below": below, "limit": limit}).rowcount or 0)
