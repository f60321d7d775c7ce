"""The frequency cap for a batch: how many marketing emails each subscriber got in
the trailing window, and which higher-priority emails wait for the same slots.

The cap counts marketing emails across every sequence of the account in the
trailing window, and every broadcast's email (queued or sent); transactional sequences neither count nor wait. When fewer slots
are left than higher-priority sequences have emails due for this subscriber right
now, those go first and this one looks again shortly.

What the database knows is read once per batch, on the first capped email, for
every capped subscriber in it (two queries instead of two per email): their recent
marketing emails, and their due marketing enrollments outside the batch. The
batch's own enrollments are judged as they stand in memory, which is what the
database would say of them at that moment had each change been written at once.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from content.compliance import is_transactional
from models import Enrollment, Message, Sequence, Step
from sequencing.rows import EnrollmentRow

# A lower-priority email held back for a higher one looks again after this.
PRIORITY_RECHECK = timedelta(minutes=1)
_MARKETING = func.coalesce(Sequence.settings["transactional"].as_boolean(), False).is_(False)


def _cap_of(sequence: Sequence) -> dict[str, Any] | None:
    settings = sequence.settings or {}
    return None if is_transactional(settings) else settings.get("frequency_cap") or None


def _window(cap: dict[str, Any]) -> timedelta:
    return timedelta(days=float(cap.get("per_days", 7)))


class FrequencyCaps:
    """The cap's bookkeeping for one batch: what the database said, and what the batch queued."""

    def __init__(self, session: Session, now: datetime, enrollments: Iterable[EnrollmentRow],
                 sequences: dict[int, Sequence], steps: dict[int, list[Step]]) -> None:
        self._session, self._now = session, now
        self._sequences, self._steps = sequences, steps
        self._batch: dict[int, list[EnrollmentRow]] = defaultdict(list)
        for enrollment in enrollments:
            self._batch[enrollment.subscriber_id].append(enrollment)
        self._pending: dict[int, int] = {}
        self._marketing = {sid for sid, s in sequences.items() if not is_transactional(s.settings)}
        self._caps = {sid: cap for sid, s in sequences.items() if (cap := _cap_of(s))}
        self._capped = {sid for sid, rows in self._batch.items() if any(e.sequence_id in self._caps for e in rows)}
        self._recent: dict[int, list[datetime]] = {}
        self._due_elsewhere: dict[int, list[int]] = {}

    def queued(self, enrollment: EnrollmentRow) -> None:
        """An email queued in this batch takes a slot before it reaches the database."""
        if enrollment.sequence_id in self._marketing:
            self._pending[enrollment.subscriber_id] = self._pending.get(enrollment.subscriber_id, 0) + 1

    def enrolled_elsewhere(self, subscriber_id: int) -> None:
        """The subscriber was enrolled mid-walk (a trigger): read its due enrollments
        again when next needed. Other subscribers' stay as read."""
        self._due_elsewhere.pop(subscriber_id, None)

    def until(self, enrollment: EnrollmentRow) -> datetime | None:
        """When the subscriber may get another marketing email, or None if now."""
        cap = self._caps.get(enrollment.sequence_id)
        if not cap:
            return None
        settings = self._sequences[enrollment.sequence_id].settings or {}
        window = _window(cap)
        recent = [t for t in self._recent_of(enrollment.subscriber_id) if t > self._now - window]
        slots = int(cap.get("max", 3)) - len(recent) - self._pending.get(enrollment.subscriber_id, 0)
        if slots > 0:
            if self._higher_priority_due(enrollment, int(settings.get("priority", 0))) < slots:
                return None
            return self._now + PRIORITY_RECHECK
        if recent:
            return recent[0] + window
        return self._now + window

    def _recent_of(self, subscriber_id: int) -> list[datetime]:
        if subscriber_id not in self._recent:
            self._recent.update(self._load_recent((self._capped | {subscriber_id}) - self._recent.keys()))
        return self._recent[subscriber_id]

    def _load_recent(self, subscriber_ids: set[int]) -> dict[int, list[datetime]]:
        """Marketing emails not failed or suppressed, oldest first, within the widest window of the batch:
        those of marketing sequences, and every broadcast's (a broadcast is marketing mail)."""
        since = self._now - max((_window(cap) for cap in self._caps.values()), default=timedelta(0))
        recent: dict[int, list[datetime]] = {sid: [] for sid in subscriber_ids}
        for subscriber_id, created_at in self._session.execute(
            select(Message.subscriber_id, Message.created_at)
            .outerjoin(Sequence, Sequence.id == Message.sequence_id)
            .where(Message.subscriber_id.in_(subscriber_ids), Message.created_at > since,
                   Message.status.notin_(("failed", "suppressed")),
                   or_(Message.broadcast_id.is_not(None), and_(Sequence.id.is_not(None), _MARKETING)))
            .order_by(Message.created_at)
        ):
            recent[subscriber_id].append(created_at)
        return recent

    def _higher_priority_due(self, enrollment: EnrollmentRow, priority: int) -> int:
        """Emails of higher-priority marketing sequences due now for the same subscriber."""
        subscriber_id = enrollment.subscriber_id
        if subscriber_id not in self._due_elsewhere:
            wanted = (self._capped | {subscriber_id}) - self._due_elsewhere.keys()
            self._due_elsewhere.update(self._load_due_elsewhere(wanted))
        in_batch = [self._due_priority(e) for e in self._batch[subscriber_id] if e.id != enrollment.id]
        return sum(1 for p in [*self._due_elsewhere[subscriber_id], *in_batch] if p is not None and p > priority)

    def _due_priority(self, enrollment: EnrollmentRow) -> int | None:
        """The priority of a batch enrollment if, as it stands now, it is due at an email
        step of an active marketing sequence; else None."""
        sequence = self._sequences[enrollment.sequence_id]
        steps = self._steps.get(enrollment.sequence_id, [])
        if (enrollment.status != "active" or enrollment.next_run_at is None or enrollment.next_run_at > self._now
                or not 0 <= enrollment.current_step < len(steps) or steps[enrollment.current_step].type != "email"
                or sequence.status != "active" or enrollment.sequence_id not in self._marketing):
            return None
        return int((sequence.settings or {}).get("priority") or 0)

    def _load_due_elsewhere(self, subscriber_ids: set[int]) -> dict[int, list[int]]:
        """Priorities of the subscribers' due marketing emails in enrollments outside the batch."""
        in_batch = {e.id for rows in self._batch.values() for e in rows}
        due: dict[int, list[int]] = {sid: [] for sid in subscriber_ids}
        for enrollment_id, subscriber_id, priority in self._session.execute(
            select(Enrollment.id, Enrollment.subscriber_id, func.coalesce(Sequence.settings["priority"].as_integer(), 0))
            .join(Sequence, Sequence.id == Enrollment.sequence_id)
            .join(Step, (Step.sequence_id == Enrollment.sequence_id) & (Step.position == Enrollment.current_step))
            .where(Enrollment.subscriber_id.in_(subscriber_ids), Enrollment.status == "active",
                   Enrollment.next_run_at <= self._now, Step.type == "email", Sequence.status == "active", _MARKETING)
        ):
            if enrollment_id not in in_batch:
                due[subscriber_id].append(priority)
        return due
