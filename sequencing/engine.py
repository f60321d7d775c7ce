"""Advancing a batch of claimed enrollments through their steps.

Everything for one batch happens in the caller's transaction: enrollments move,
outbox messages and webhook calls are inserted (their unique keys make a retried
batch harmless), and leases are released. The caller commits, then enqueues the
sends and webhook calls this returns, so a worker never sees a row that is not
committed yet.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Enrollment, Event, Message, Sequence, Step, Subscriber, WebhookDelivery
from models.bulk import insert_ignoring_conflicts
from sequencing import triggers
from sequencing.conditions import Facts
from sequencing.handlers import HANDLERS, clear_wait
from sequencing.moves import Exit, Goto, Move, Wait

log = logging.getLogger(__name__)

# Steps one enrollment may run in one advance without reaching a wait: a loop of
# jumps with no delay in it fails the enrollment instead of spinning a worker.
MAX_STEPS_PER_ADVANCE = 100
# How long a message waits after being queued before a tick may dispatch it again
# (the send task enqueued after commit normally claims it well before).
DISPATCH_GRACE = timedelta(seconds=60)
# A lower-priority email held back for a higher one looks again after this.
PRIORITY_RECHECK = timedelta(minutes=1)


@dataclass
class AdvanceResult:
    message_ids: list[int] = field(default_factory=list)
    webhook_ids: list[int] = field(default_factory=list)
    advanced: int = 0


@dataclass
class Batch:
    """What handlers see: the clock, the loaded rows, and the effects to write."""

    session: Session
    now: datetime
    sequences: dict[int, Sequence]
    steps: dict[int, list[Step]]
    dispatch_grace: timedelta = DISPATCH_GRACE
    messages: list[dict[str, Any]] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    moves_elsewhere: list[tuple[Enrollment, int]] = field(default_factory=list)
    _cap_counts: dict[int, int] = field(default_factory=dict)

    def sequence(self, sequence_id: int) -> Sequence:
        return self.sequences[sequence_id]

    def queue_message(self, enrollment: Enrollment, step: Step, subscriber: Subscriber,
                      variant: str | None, key: str, variant_config: dict[str, Any] | None) -> None:
        subject = (variant_config or {}).get("subject") or step.config.get("subject")
        self.messages.append({
            "account_id": enrollment.account_id, "subscriber_id": subscriber.id,
            "sequence_id": enrollment.sequence_id, "enrollment_id": enrollment.id, "step_id": step.id,
            "variant": variant, "idempotency_key": key, "status": "queued", "to_email": subscriber.email,
            "subject": (subject or "")[:998], "attempts": 0, "meta": {"position": step.position},
            "created_at": self.now, "updated_at": self.now, "claimed_until": self.now + self.dispatch_grace,
        })
        if self._counts_against_cap(enrollment):
            self._cap_counts[subscriber.id] = self._cap_counts.get(subscriber.id, 0) + 1

    def queue_webhook(self, enrollment: Enrollment, step: Step, subscriber: Subscriber, key: str) -> None:
        payload = {
            "event": "sequence.webhook_step",
            "sequence_id": enrollment.sequence_id, "enrollment_id": enrollment.id, "step": step.position,
            "subscriber": {"id": subscriber.id, "email": subscriber.email, "first_name": subscriber.first_name,
                           "last_name": subscriber.last_name, "attributes": subscriber.attributes, "tags": subscriber.tags},
            "data": step.config.get("payload") or {},
        }
        self.webhooks.append({
            "account_id": enrollment.account_id, "enrollment_id": enrollment.id, "idempotency_key": key,
            "url": step.config["url"], "payload": payload, "status": "queued", "attempts": 0,
            "created_at": self.now, "claimed_until": self.now + self.dispatch_grace,
        })

    def tag_added(self, subscriber: Subscriber, tag: str) -> None:
        """A tag added by an action starts the sequences it triggers, as one added
        through the API does."""
        triggers.fire(self.session, subscriber.account_id, subscriber.id, "tag_added", self.now, tag=tag)

    def enroll_elsewhere(self, enrollment: Enrollment, sequence_id: int) -> None:
        self.moves_elsewhere.append((enrollment, sequence_id))

    def _counts_against_cap(self, enrollment: Enrollment) -> bool:
        return not (self.sequence(enrollment.sequence_id).settings or {}).get("transactional", False)

    def frequency_cap_until(self, enrollment: Enrollment, subscriber: Subscriber) -> datetime | None:
        """When the subscriber may get another marketing email, or None if now.

        The cap counts marketing emails across every sequence of the account in
        the trailing window; transactional sequences neither count nor wait. When
        fewer slots are left than higher-priority sequences have emails due for
        this subscriber right now, those go first and this one looks again shortly.
        """
        settings = self.sequence(enrollment.sequence_id).settings or {}
        cap = settings.get("frequency_cap")
        if not cap or settings.get("transactional"):
            return None
        window = timedelta(days=float(cap.get("per_days", 7)))
        recent = list(self.session.scalars(
            select(Message.created_at)
            .join(Sequence, Sequence.id == Message.sequence_id)
            .where(Message.subscriber_id == subscriber.id, Message.created_at > self.now - window,
                   Message.status.notin_(("failed", "suppressed")),
                   func.coalesce(Sequence.settings["transactional"].as_boolean(), False).is_(False))
            .order_by(Message.created_at)
        ))
        pending = self._cap_counts.get(subscriber.id, 0)
        slots = int(cap.get("max", 3)) - len(recent) - pending
        if slots > 0:
            if self._higher_priority_due(enrollment, int(settings.get("priority", 0))) < slots:
                return None
            return self.now + PRIORITY_RECHECK
        if recent:
            return recent[0] + window
        return self.now + window

    def _higher_priority_due(self, enrollment: Enrollment, priority: int) -> int:
        """Emails of higher-priority marketing sequences due now for the same subscriber."""
        return int(self.session.scalar(
            select(func.count()).select_from(Enrollment)
            .join(Sequence, Sequence.id == Enrollment.sequence_id)
            .join(Step, (Step.sequence_id == Enrollment.sequence_id) & (Step.position == Enrollment.current_step))
            .where(Enrollment.subscriber_id == enrollment.subscriber_id, Enrollment.id != enrollment.id,
                   Enrollment.status == "active", Enrollment.next_run_at <= self.now, Step.type == "email",
                   Sequence.status == "active",
                   func.coalesce(Sequence.settings["priority"].as_integer(), 0) > priority,
                   func.coalesce(Sequence.settings["transactional"].as_boolean(), False).is_(False))
        ) or 0)

    def key_property(self, enrollment: Enrollment) -> str | None:
        if not enrollment.instance_key:
            return None
        trigger = (self.sequence(enrollment.sequence_id).settings or {}).get("trigger") or {}
        return trigger.get("key_property")

    def facts(self, enrollment: Enrollment, subscriber: Subscriber) -> Facts:
        sent_keys = {int(pos): key for pos, key in ((enrollment.state or {}).get("sent") or {}).items()}
        ids = dict(self.session.execute(
            select(Message.idempotency_key, Message.id).where(Message.idempotency_key.in_(list(sent_keys.values())))
        ).all()) if sent_keys else {}  # type: ignore[arg-type]
        by_step = {pos: ids[key] for pos, key in sent_keys.items() if key in ids}
        message_events: dict[int, set[str]] = defaultdict(set)
        if by_step:
            for message_id, name in self.session.execute(
                select(Event.message_id, Event.name).where(Event.message_id.in_(list(by_step.values())))
            ):
                message_events[message_id].add(name)
        events: dict[str, list[datetime]] = defaultdict(list)
        key_property = self.key_property(enrollment)
        for name, occurred, properties in self.session.execute(
            select(Event.name, Event.occurred_at, Event.properties)
            .where(Event.subscriber_id == subscriber.id, Event.message_id.is_(None))
        ):
            if key_property and str((properties or {}).get(key_property)) != enrollment.instance_key:
                continue  # a keyed instance only sees events about its own key
            events[name].append(occurred)
        return Facts(tags=list(subscriber.tags or []), attributes=dict(subscriber.attributes or {}),
                     messages_by_step=by_step, message_events=dict(message_events), events=dict(events))


def _load(session: Session, ids: list[int]) -> tuple[list[Enrollment], dict[int, Subscriber], dict[int, Sequence], dict[int, list[Step]]]:
    enrollments = list(session.scalars(select(Enrollment).where(Enrollment.id.in_(ids)).order_by(Enrollment.id)))
    subscriber_ids = {e.subscriber_id for e in enrollments}
    sequence_ids = {e.sequence_id for e in enrollments}
    subscribers = {s.id: s for s in session.scalars(select(Subscriber).where(Subscriber.id.in_(subscriber_ids)))}
    sequences = {s.id: s for s in session.scalars(select(Sequence).where(Sequence.id.in_(sequence_ids)))}
    steps: dict[int, list[Step]] = defaultdict(list)
    for step in session.scalars(select(Step).where(Step.sequence_id.in_(sequence_ids)).order_by(Step.position)):
        steps[step.sequence_id].append(step)
    return enrollments, subscribers, sequences, steps


def _goal_reached(batch: Batch, enrollments: list[Enrollment]) -> dict[int, str]:
    """Enrollment id -> the exit event that ended it (a conversion since enrollment;
    for a keyed instance, one carrying its key)."""
    session, sequences = batch.session, batch.sequences
    goals = {sid: set((s.settings or {}).get("exit_events") or []) for sid, s in sequences.items()}
    names = set().union(*goals.values()) if goals else set()
    if not names:
        return {}
    earliest = min(e.enrolled_at for e in enrollments)
    seen: dict[int, list[tuple[str, datetime, dict[str, Any]]]] = defaultdict(list)
    for subscriber_id, name, occurred, properties in session.execute(
        select(Event.subscriber_id, Event.name, Event.occurred_at, Event.properties).where(
            Event.subscriber_id.in_({e.subscriber_id for e in enrollments}), Event.name.in_(names),
            Event.occurred_at >= earliest)
    ):
        seen[subscriber_id].append((name, occurred, properties or {}))
    reached: dict[int, str] = {}
    for e in enrollments:
        key_property = batch.key_property(e)
        for name, occurred, properties in seen.get(e.subscriber_id, []):
            if key_property and str(properties.get(key_property)) != e.instance_key:
                continue
            if name in goals.get(e.sequence_id, ()) and occurred >= e.enrolled_at:
                reached[e.id] = name
    return reached


def _finish(enrollment: Enrollment, status: str, reason: str | None, now: datetime) -> None:
    enrollment.status = status
    enrollment.exit_reason = reason
    enrollment.completed_at = now
    enrollment.next_run_at = None
    clear_wait(enrollment)


def _run(batch: Batch, enrollment: Enrollment, subscriber: Subscriber, steps: list[Step]) -> None:
    """Walk one enrollment until it waits, leaves, or completes."""
    for _ in range(MAX_STEPS_PER_ADVANCE):
        if enrollment.current_step >= len(steps):
            _finish(enrollment, "completed", None, batch.now)
            return
        step = steps[enrollment.current_step]
        move: Move = HANDLERS[step.type](batch, enrollment, step, subscriber)
        if isinstance(move, Wait):
            enrollment.next_run_at = move.until
            return
        clear_wait(enrollment)
        if isinstance(move, Exit):
            _finish(enrollment, "exited", move.reason, batch.now)
            return
        enrollment.current_step = move.position if isinstance(move, Goto) else enrollment.current_step + 1
    _finish(enrollment, "failed", f"more than {MAX_STEPS_PER_ADVANCE} steps without a wait (a loop?)", batch.now)


def advance_enrollments(session: Session, ids: list[int], now: datetime,
                        dispatch_grace: timedelta = DISPATCH_GRACE) -> AdvanceResult:
    """Advance the given (claimed) enrollments as far as each can go at ``now``.

    New messages and webhook calls are not dispatched by a tick before
    ``dispatch_grace`` has passed: the caller enqueues them itself after commit.
    """
    enrollments, subscribers, sequences, steps = _load(session, ids)
    batch = Batch(session=session, now=now, sequences=sequences, steps=steps, dispatch_grace=dispatch_grace)
    goals = _goal_reached(batch, enrollments)
    result = AdvanceResult()
    for enrollment in enrollments:
        enrollment.claimed_until = None
        if enrollment.status != "active":
            continue
        sequence = sequences[enrollment.sequence_id]
        subscriber = subscribers[enrollment.subscriber_id]
        if sequence.status != "active":
            # paused between claim and advance: freeze where it is
            if sequence.status == "paused":
                enrollment.status = "paused"
            continue
        if subscriber.status != "active":
            _finish(enrollment, "exited", f"subscriber_{subscriber.status}", now)
        elif enrollment.id in goals:
            _finish(enrollment, "exited", f"goal:{goals[enrollment.id]}", now)
        else:
            try:
                _run(batch, enrollment, subscriber, steps[enrollment.sequence_id])
            except (KeyError, TypeError, ValueError) as exc:
                # A step whose config the engine cannot read fails this enrollment only.
                log.warning("enrollment failed", extra={"enrollment_id": enrollment.id, "error": repr(exc)})
                _finish(enrollment, "failed", f"step error: {exc!r}"[:200], now)
        result.advanced += 1
    _enroll_moves(session, batch, now)
    result.message_ids = insert_ignoring_conflicts(session, Message, batch.messages, Message.id)
    result.webhook_ids = insert_ignoring_conflicts(session, WebhookDelivery, batch.webhooks, WebhookDelivery.id)
    session.flush()
    return result


def _enroll_moves(session: Session, batch: Batch, now: datetime) -> None:
    rows = []
    for enrollment, sequence_id in batch.moves_elsewhere:
        target = session.get(Sequence, sequence_id)
        if target is None or target.account_id != enrollment.account_id or target.status != "active":
            continue
        rows.append({"account_id": enrollment.account_id, "sequence_id": sequence_id,
                     "subscriber_id": enrollment.subscriber_id, "instance_key": "", "run": 1, "status": "active",
                     "current_step": 0, "next_run_at": now, "state": {}, "enrolled_at": now, "updated_at": now})
    insert_ignoring_conflicts(session, Enrollment, rows, Enrollment.id)
