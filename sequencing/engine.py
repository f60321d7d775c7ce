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

from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from analytics.experiment_results import stored_decisions
from analytics.experiments import promoted_variant
from audience.topics import members_of
from core.flow import FlowLog, ending_kind, record
from core.isolation import run_isolated
from core.reasons import printable
from models import Enrollment, Event, ExperimentHoldout, Message, Sequence, Step, WebhookDelivery
from models.bulk import insert_ignoring_conflicts, insert_rows_returning
from models.event import IMPORTED
from sequencing import triggers
from sequencing.best_time import BatchScores
from sequencing.conditions import Facts
from sequencing.facts import BatchFacts
from sequencing.frequency_cap import FrequencyCaps
from sequencing.handlers import HANDLERS, clear_wait
from sequencing.holdout import holdout_percent, is_held_out
from sequencing.moves import Exit, Goto, Move, Wait
from sequencing.rows import EnrollmentRow, SubscriberRow, load_enrollments, load_subscribers, write_back

log = logging.getLogger(__name__)

# Steps one enrollment may run in one advance without reaching a wait: a loop of
# jumps with no delay in it fails the enrollment instead of spinning a worker.
MAX_STEPS_PER_ADVANCE = 100
# How long a message waits after being queued before a tick may dispatch it again
# (the send task enqueued after commit normally claims it well before).
DISPATCH_GRACE = timedelta(seconds=60)
# Advances of one enrollment that may fail in a row (raise, or die with their
# worker) before it is failed with the reason: enough to ride out a bad moment,
# few enough that a poison row stops costing a batch retry within minutes.
MAX_CRASHES = 5
# The first wait before an enrollment whose advance raised is tried again (doubled each time).
CRASH_RETRY = timedelta(minutes=1)
# Failures of the database rather than of a row's data (connection lost, deadlock,
# lock timeout): no enrollment is charged for them (advance_enrollments).
_NOT_THE_ROWS = (OperationalError, InterfaceError)
# Step types whose handlers ask for facts (sequencing.facts).
ASKING_STEPS = frozenset({"condition", "wait_until"})


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
    caps: FrequencyCaps
    known: BatchFacts
    scores: BatchScores
    # Step id -> the variant every visit gets: its experiment's stored winner, with auto_promote.
    promoted: dict[int, str] = field(default_factory=dict)
    enrollments: list[EnrollmentRow] = field(default_factory=list)
    subscribers: dict[int, SubscriberRow] = field(default_factory=dict)
    dispatch_grace: timedelta = DISPATCH_GRACE
    messages: list[dict[str, Any]] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    # Visits of email steps drawn into their experiment's holdout arm (models.ExperimentHoldout).
    arm_holds: list[dict[str, Any]] = field(default_factory=list)
    moves_elsewhere: list[tuple[EnrollmentRow, int]] = field(default_factory=list)
    # Step transitions of this batch (core.flow), written with it in one INSERT.
    flow: FlowLog = field(default_factory=FlowLog)

    def sequence(self, sequence_id: int) -> Sequence:
        return self.sequences[sequence_id]

    def queue_message(self, enrollment: EnrollmentRow, step: Step, subscriber: SubscriberRow,
                      variant: str | None, key: str, variant_config: dict[str, Any] | None) -> None:
        subject = (variant_config or {}).get("subject") or step.config.get("subject")
        self.messages.append({
            "account_id": enrollment.account_id, "subscriber_id": subscriber.id,
            "sequence_id": enrollment.sequence_id, "enrollment_id": enrollment.id, "step_id": step.id,
            "variant": variant, "idempotency_key": key, "status": "queued", "to_email": subscriber.email,
            "subject": (subject or "")[:998], "attempts": 0, "meta": {"position": step.position},
            "created_at": self.now, "updated_at": self.now, "claimed_until": self.now + self.dispatch_grace,
        })
        self.caps.queued(enrollment)

    def hold_in_arm(self, enrollment: EnrollmentRow, step: Step, visit: int) -> None:
        self.arm_holds.append({
            "account_id": enrollment.account_id, "sequence_id": enrollment.sequence_id, "step_id": step.id,
            "enrollment_id": enrollment.id, "subscriber_id": enrollment.subscriber_id, "visit": visit,
            "held_at": self.now,
        })

    def queue_webhook(self, enrollment: EnrollmentRow, step: Step, subscriber: SubscriberRow, key: str) -> None:
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

    def tag_added(self, subscriber: SubscriberRow, tag: str) -> None:
        """A tag added by an action starts the sequences it triggers, as one added
        through the API does. When one does, the walk so far is written first: the
        trigger's re-entry rule reads enrollments, and may read one of this batch's."""
        sequences = triggers.triggered(self.session, subscriber.account_id, "tag_added", tag=tag)
        if not sequences:
            return
        self.write_back()
        if triggers.enroll_triggered(self.session, sequences, subscriber.account_id, subscriber.id, "tag_added",
                                     self.now):
            self.caps.enrolled_elsewhere(subscriber.id)

    def write_back(self) -> None:
        write_back(self.session, self.enrollments, self.subscribers)

    def enroll_elsewhere(self, enrollment: EnrollmentRow, sequence_id: int) -> None:
        self.moves_elsewhere.append((enrollment, sequence_id))

    def frequency_cap_until(self, enrollment: EnrollmentRow) -> datetime | None:
        """When the subscriber may get another marketing email, or None if now (sequencing.frequency_cap)."""
        return self.caps.until(enrollment)

    def key_property(self, enrollment: EnrollmentRow) -> str | None:
        if not enrollment.instance_key:
            return None
        trigger = (self.sequence(enrollment.sequence_id).settings or {}).get("trigger") or {}
        return trigger.get("key_property")

    def facts(self, enrollment: EnrollmentRow, subscriber: SubscriberRow) -> Facts:
        facts = self.known.facts(enrollment, subscriber, self.key_property(enrollment))
        facts.scores = self.scores.view(subscriber)
        return facts


def _load(session: Session, ids: list[int]) -> tuple[list[EnrollmentRow], dict[int, SubscriberRow], dict[int, Sequence], dict[int, list[Step]]]:
    enrollments = load_enrollments(session, ids)
    subscribers = load_subscribers(session, {e.subscriber_id for e in enrollments})
    sequence_ids = {e.sequence_id for e in enrollments}
    if not sequence_ids:
        return enrollments, subscribers, {}, {}
    sequences = {s.id: s for s in session.scalars(select(Sequence).where(Sequence.id.in_(sequence_ids)))}
    steps: dict[int, list[Step]] = defaultdict(list)
    for step in session.scalars(select(Step).where(Step.sequence_id.in_(sequence_ids)).order_by(Step.position)):
        steps[step.sequence_id].append(step)
    return enrollments, subscribers, sequences, steps


def _promoted(session: Session, steps: dict[int, list[Step]]) -> dict[int, str]:
    """The winners to promote on the batch's steps, one query per batch: steps whose
    experiment has ``auto_promote`` (the default) and a stored decided winner."""
    promoting = [step.id for rows in steps.values() for step in rows
                 if step.type == "email" and step.config.get("experiment")
                 and step.config["experiment"].get("auto_promote", True)]
    decisions = stored_decisions(session, promoting)
    winners = {step_id: promoted_variant({**decision, "auto_promote": True})
               for step_id, decision in decisions.items()}
    return {step_id: winner for step_id, winner in winners.items() if winner is not None}


def _new_batch(session: Session, now: datetime, enrollments: list[EnrollmentRow], subscribers: dict[int, SubscriberRow],
               sequences: dict[int, Sequence], steps: dict[int, list[Step]], dispatch_grace: timedelta) -> Batch:
    asking = {sid for sid, rows in steps.items() if any(step.type in ASKING_STEPS for step in rows)}
    known = BatchFacts(session, [e for e in enrollments if e.status == "active" and e.sequence_id in asking])
    caps = FrequencyCaps(session, now, enrollments, sequences, steps)
    return Batch(session=session, now=now, sequences=sequences, steps=steps, caps=caps, known=known,
                 scores=BatchScores(session, subscribers),
                 promoted=_promoted(session, steps),
                 enrollments=enrollments, subscribers=subscribers, dispatch_grace=dispatch_grace)


def _goal_reached(batch: Batch, enrollments: list[EnrollmentRow]) -> dict[int, str]:
    """Enrollment id -> the exit event that ended it (a conversion since enrollment;
    for a keyed instance, one carrying its key). Imported history ends nothing."""
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
            Event.occurred_at >= earliest, Event.source != IMPORTED)
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


def _finish(enrollment: EnrollmentRow, status: str, reason: str | None, now: datetime) -> None:
    enrollment.status = status
    enrollment.exit_reason = reason
    enrollment.completed_at = now
    enrollment.next_run_at = None
    clear_wait(enrollment)


def _end(batch: Batch, enrollment: EnrollmentRow, status: str, reason: str | None) -> None:
    """Finish the enrollment and record where and how it left (core.flow)."""
    _finish(enrollment, status, reason, batch.now)
    batch.flow.add(enrollment.account_id, enrollment.sequence_id, enrollment.current_step, ending_kind(status, reason))


def _run(batch: Batch, enrollment: EnrollmentRow, subscriber: SubscriberRow, steps: list[Step]) -> None:
    """Walk one enrollment until it waits, leaves, or completes; each step passed
    and entered on the way is recorded, so a goto back counts the steps it revisits."""
    for _ in range(MAX_STEPS_PER_ADVANCE):
        if enrollment.current_step >= len(steps):
            _end(batch, enrollment, "completed", None)
            return
        step = steps[enrollment.current_step]
        move: Move = HANDLERS[step.type](batch, enrollment, step, subscriber)
        if isinstance(move, Wait):
            enrollment.next_run_at = move.until
            return
        clear_wait(enrollment)
        if isinstance(move, Exit):
            _end(batch, enrollment, "exited", move.reason)
            return
        position = move.position if isinstance(move, Goto) else enrollment.current_step + 1
        batch.flow.add(enrollment.account_id, enrollment.sequence_id, enrollment.current_step, "passed")
        if position < len(steps):
            batch.flow.add(enrollment.account_id, enrollment.sequence_id, position, "entered")
        enrollment.current_step = position
    _end(batch, enrollment, "failed", f"more than {MAX_STEPS_PER_ADVANCE} steps without a wait (a loop?)")


def advance_enrollments(session: Session, ids: list[int], now: datetime,
                        dispatch_grace: timedelta = DISPATCH_GRACE) -> AdvanceResult:
    """Advance the given (claimed) enrollments as far as each can go at ``now``.

    New messages and webhook calls are not dispatched by a tick before
    ``dispatch_grace`` has passed: the caller enqueues them itself after commit.

    The batch runs in a savepoint (one per batch, so the usual batch costs what it
    did). If anything in it fails, one enrollment's walk or the database refusing
    one of its rows, the savepoint is rolled back and the enrollments are advanced
    one at a time, each in a savepoint of its own: the others go on, and the one
    that fails again is charged a crash (``_crashed``). Failures of the database
    itself (``OperationalError``) are nobody's fault and propagate: the leases run
    out and a later tick retries the batch.
    """
    result = AdvanceResult()
    for one in run_isolated(session, ids, lambda chunk: _advance(session, list(chunk), now, dispatch_grace),
                            lambda enrollment_id, exc: _crashed(session, enrollment_id, exc, now),
                            _NOT_THE_ROWS, "advance"):
        result.message_ids += one.message_ids
        result.webhook_ids += one.webhook_ids
        result.advanced += one.advanced
    return result


def _advance(session: Session, ids: list[int], now: datetime, dispatch_grace: timedelta) -> AdvanceResult:
    enrollments, subscribers, sequences, steps = _load(session, ids)
    batch = _new_batch(session, now, enrollments, subscribers, sequences, steps, dispatch_grace)
    goals = _goal_reached(batch, enrollments)
    result = AdvanceResult()
    for enrollment in enrollments:
        enrollment.claimed_until = enrollment.claimed_by = None
        if enrollment.status != "active":
            continue
        sequence = sequences[enrollment.sequence_id]
        subscriber = subscribers[enrollment.subscriber_id]
        if sequence.status != "active":
            # paused between claim and advance: freeze where it is
            if sequence.status == "paused":
                enrollment.status = "paused"
            continue
        if enrollment.crashes >= MAX_CRASHES:
            # The claim counted a last lease its worker died holding: not tried again.
            _end(batch, enrollment, "failed", f"abandoned: its advance crashed {enrollment.crashes} times in a row"
                 + (f" (last: {enrollment.error})" if enrollment.error else ""))
        elif subscriber.status != "active":
            _end(batch, enrollment, "exited", f"subscriber_{subscriber.status}")
        elif enrollment.id in goals:
            _end(batch, enrollment, "exited", f"goal:{goals[enrollment.id]}")
        else:
            try:
                _run(batch, enrollment, subscriber, steps[enrollment.sequence_id])
            except (KeyError, TypeError, ValueError) as exc:
                # A step whose config the engine cannot read fails this enrollment only.
                log.warning("enrollment failed", extra={"enrollment_id": enrollment.id, "error": repr(exc)})
                _end(batch, enrollment, "failed", printable(f"step error: {exc!r}"))
            if enrollment.crashes:
                # crashes counts advances that failed in a row: this one did not
                enrollment.crashes, enrollment.error = 0, None
        result.advanced += 1
    batch.write_back()
    _enroll_moves(session, batch, now)
    batch.flow.write(session, now)
    result.message_ids = insert_rows_returning(session, Message.__table__, batch.messages)
    result.webhook_ids = insert_rows_returning(session, WebhookDelivery.__table__, batch.webhooks)
    insert_rows_returning(session, ExperimentHoldout.__table__, batch.arm_holds)
    return result


def crash_retry_at(now: datetime, crashes: int) -> datetime:
    """When an enrollment whose advance raised ``crashes`` times in a row is tried
    again: CRASH_RETRY, doubled each time (1, 2, 4, 8 minutes before the fifth)."""
    return now + CRASH_RETRY * 2 ** max(crashes - 1, 0)


_ENROLLMENTS = Enrollment.__table__


def _crashed(session: Session, enrollment_id: int, exc: Exception, now: datetime) -> None:
    """Charge one crash to an enrollment whose advance raised on its own: release
    it to be tried again later, or, at ``MAX_CRASHES`` in a row, fail it with the
    reason. A row no longer active (paused meanwhile) keeps its status and is only
    released, so that a later claim does not count this as a dead worker."""
    log.warning("enrollment advance crashed", extra={"enrollment_id": enrollment_id, "error": repr(exc)})
    reason = printable(f"advance crashed: {exc!r}")
    c = _ENROLLMENTS.c
    row = session.execute(select(c.crashes, c.account_id, c.sequence_id, c.current_step)
                          .where(c.id == enrollment_id, c.status == "active")).first()
    if row is None:
        session.execute(_ENROLLMENTS.update().where(c.id == enrollment_id).values(claimed_until=None, claimed_by=None))
        return
    crashes = row.crashes + 1
    if crashes >= MAX_CRASHES:
        values: dict[str, Any] = {"status": "failed", "exit_reason": reason, "completed_at": now, "next_run_at": None}
    else:
        values = {"next_run_at": crash_retry_at(now, crashes)}
    session.execute(_ENROLLMENTS.update().where(c.id == enrollment_id, c.status == "active").values(
        crashes=crashes, error=reason, claimed_until=None, claimed_by=None, updated_at=now, **values))
    if crashes >= MAX_CRASHES:
        record(session, [(row.account_id, row.sequence_id, row.current_step, "failed", 1)], now)


def _enroll_moves(session: Session, batch: Batch, now: datetime) -> None:
    rows = []
    for enrollment, sequence_id in batch.moves_elsewhere:
        target = session.get(Sequence, sequence_id)
        if target is None or target.account_id != enrollment.account_id or target.status != "active":
            continue
        topic = (target.settings or {}).get("topic")
        if topic and not members_of(session, enrollment.account_id, topic, [enrollment.subscriber_id]):
            continue  # a topic's sequence takes only its members, by a move as by enrolling
        rows.append({"account_id": enrollment.account_id, "sequence_id": sequence_id,
                     "subscriber_id": enrollment.subscriber_id, "instance_key": "", "run": 1, "status": "active",
                     "current_step": 0, "next_run_at": now, "state": {}, "enrolled_at": now, "updated_at": now,
                     "held_out": is_held_out(sequence_id, enrollment.subscriber_id, holdout_percent(target.settings))})
    # A sequence is one account's, so the created rows' sequence ids name their accounts.
    accounts = {row["sequence_id"]: row["account_id"] for row in rows}
    for sequence_id in insert_ignoring_conflicts(session, Enrollment, rows, Enrollment.sequence_id):
        batch.flow.add(accounts[sequence_id], sequence_id, 0, "entered")
