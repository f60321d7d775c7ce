"""An account's email outcomes over a span of days, all sequences together: what
the console's overview shows for today and the last 30 days.

From the same rollups as a sequence's analytics (``analytics.rollups``), so the
overview and ``GET /email-sequences/{id}/analytics`` never disagree: each message
counted once per outcome, days in UTC, as fresh as the account's ``as_of``.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.rollups import watermark
from models import SequenceRollup

OUTCOMES = ("sent", "delivered", "opened", "clicked", "bounced", "complained")


def account_counts(session: Session, account_id: int, since: date) -> dict[str, int]:
    """Messages with each outcome on days from ``since`` (UTC, inclusive) on; 0 for none."""
    rows = session.execute(
        select(SequenceRollup.metric, func.sum(SequenceRollup.uniques))
        .where(SequenceRollup.account_id == account_id, SequenceRollup.day >= since,
               SequenceRollup.metric.in_(OUTCOMES))
        .group_by(SequenceRollup.metric))
    found = {metric: int(total or 0) for metric, total in rows}
    return {name: found.get(name, 0) for name in OUTCOMES}


def as_of(session: Session, account_id: int) -> Any:
    """Every event committed before this moment is counted (None: nothing folded yet)."""
    mark = watermark(session, account_id)
    return mark["as_of"] if mark else None
