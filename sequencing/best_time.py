"""Learned scores in sequences: the ``score`` condition's facts and the email step's
``send_at: "best_time"``, which holds an email until the subscriber's learned hour.

Scores are read once per batch, on first use, for every subscriber of the batch
(``BatchScores``), so a batch that asks nothing of them reads nothing. A subscriber
without scores has none to compare: a ``score`` condition is then false, and a
``best_time`` email goes out now (within the send window, as any email).

``best_time``: of the moments from now to 23 hours ahead (now, then the start of
each local hour), those the sequence's send window and quiet days allow, the one
whose local hour is closest (around the clock) to the learned hour, the earliest of
equals. So the email waits less than 24 hours, never leaves the window, and lands in
the learned hour itself whenever the window allows it. The chosen moment is kept in
the enrollment's wait state, so a later tick does not choose again.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import SubscriberScore
from sequencing.handlers import start_or_check_wait
from sequencing.timing import next_send_opening, zone

if TYPE_CHECKING:
    from models import Step
    from sequencing.engine import Batch
    from sequencing.rows import EnrollmentRow, SubscriberRow

SCORE_FIELDS = ("churn_risk", "engagement", "best_send_hour")
HOURS_AHEAD = 23


class BatchScores:
    """The batch's subscribers' scores, loaded together when first asked for."""

    def __init__(self, session: Session, subscribers: Mapping[int, SubscriberRow]) -> None:
        self._session = session
        self._subscribers = subscribers
        self._rows: dict[int, dict[str, Any]] | None = None

    def of(self, subscriber: SubscriberRow) -> dict[str, Any]:
        """The subscriber's scores (empty when not scored)."""
        if self._rows is None:
            self._rows = self._load()
        return self._rows.get(subscriber.id, {})

    def view(self, subscriber: SubscriberRow) -> Mapping[str, Any]:
        """``of(subscriber)`` read only when a condition looks at it."""
        return _Lazy(self, subscriber)

    def _load(self) -> dict[int, dict[str, Any]]:
        accounts = {s.id: s.account_id for s in self._subscribers.values()}
        if not accounts:
            return {}
        rows = self._session.execute(select(SubscriberScore.subscriber_id, SubscriberScore.account_id,
                                            *(getattr(SubscriberScore, f) for f in SCORE_FIELDS))
                                     .where(SubscriberScore.subscriber_id.in_(list(accounts))))
        return {row[0]: dict(zip(SCORE_FIELDS, row[2:], strict=True)) for row in rows
                if accounts.get(row[0]) == row[1]}


class _Lazy(Mapping[str, Any]):
    def __init__(self, scores: BatchScores, subscriber: SubscriberRow) -> None:
        self._scores, self._subscriber = scores, subscriber

    def __getitem__(self, key: str) -> Any:
        return self._scores.of(self._subscriber)[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._scores.of(self._subscriber))

    def __len__(self) -> int:
        return len(self._scores.of(self._subscriber))


def _distance(hour: int, best: int) -> int:
    apart = abs(hour - best) % 24
    return min(apart, 24 - apart)


def best_time(now: datetime, best_hour: int, window: dict[str, Any] | None, quiet_days: list[str] | None,
              tz: ZoneInfo) -> datetime:
    """When to send an email reaching its step at ``now`` to a subscriber whose learned
    hour (local) is ``best_hour``: see the module's docstring. ``now`` itself when no
    moment ahead is allowed (the send window check then holds the email as usual)."""
    top = now.astimezone(tz).replace(minute=0, second=0, microsecond=0).astimezone(timezone.utc)
    moments = [now, *(top + timedelta(hours=k) for k in range(1, HOURS_AHEAD + 1))]
    allowed = [m for m in moments if next_send_opening(m, window, quiet_days, tz) <= m]
    if not allowed:
        return now
    return min(allowed, key=lambda m: (_distance(m.astimezone(tz).hour, best_hour), m))


def hold_for_best_time(batch: Batch, enrollment: EnrollmentRow, step: Step, subscriber: SubscriberRow) -> datetime | None:
    """Until when a ``send_at: best_time`` email waits, or None to go on now."""
    if step.config.get("send_at") != "best_time":
        return None
    hour = batch.scores.of(subscriber).get("best_send_hour")
    if hour is None:
        return None
    settings = batch.sequence(enrollment.sequence_id).settings or {}
    tz = zone(subscriber.timezone, settings.get("timezone"))
    target = best_time(batch.now, int(hour), settings.get("send_window"), settings.get("quiet_days"), tz)
    return start_or_check_wait(enrollment, step, batch.now, target)
