"""Waking waiting enrollments when something happens to their subscriber.

A condition, wait_until or exit goal may be waiting on an open, click, tag or
event; rather than polling, the row is made due now and the next tick looks again.
Waking one that waits on something else only costs one advance: it goes back to
sleep until its own time.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from analytics.events import Recorded
from models import Enrollment


def wake_subscriber(session: Session, subscriber_id: int, now: datetime) -> int:
    result = session.execute(
        update(Enrollment)
        .where(Enrollment.subscriber_id == subscriber_id, Enrollment.status == "active", Enrollment.next_run_at > now)
        .values(next_run_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def wake_recorded(session: Session, recorded: Recorded | None, now: datetime) -> int:
    """Wake whom an event just recorded names (analytics.events.Recorded.wake);
    nothing for a replay."""
    if recorded is None or recorded.wake is None:
        return 0
    return wake_subscriber(session, recorded.wake, now)
