"""A sequence's life: create, replace, delete, and the status machine

    draft --activate--> active --pause--> paused --resume/activate--> active

Pausing flips the sequence's active enrollments to ``paused`` in one UPDATE, so the
tick (which claims only ``status = 'active'`` rows) stops picking them up without a
per-row check; resuming flips them back, and rows already past due run at once.

Replacing steps (PUT) while enrollments are running: an enrollment keeps its
position index, clamped to the new last step, and ``Sequence.version`` goes up by
one. Steps are updated in place by position, so a position that survives keeps its
``Step.id`` (messages and analytics keep pointing at it). Completed and exited
enrollments are left alone.

Functions take a session and a ``now`` and never commit.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from core.flow import record
from models import Enrollment, Segment, Sequence, Step, Template, Topic
from sequencing.errors import MAX_INT, NotFoundError, PreflightFailedError, StateConflictError
from sequencing.preflight import Preflight
from sequencing.settings_schema import validate_settings
from sequencing.steps import References, split_step, validate_steps

TRANSITIONS = {
    "activate": ({"draft", "paused"}, "active"),
    "pause": ({"active"}, "paused"),
    "resume": ({"paused"}, "active"),
}


def get_sequence(session: Session, account_id: int, sequence_id: int, *, lock: bool = False) -> Sequence:
    """The account's sequence, or NotFoundError (another account's id is simply not found)."""
    if not 0 < sequence_id <= MAX_INT:
        raise NotFoundError("Sequence not found.")
    query = select(Sequence).where(Sequence.id == sequence_id, Sequence.account_id == account_id)
    if lock:
        query = query.with_for_update()
    sequence = session.scalars(query).one_or_none()
    if sequence is None:
        raise NotFoundError("Sequence not found.")
    return sequence


def references(session: Session, account_id: int) -> References:
    """Id checks scoped to the account, one query per distinct id."""
    def exists(model: type[Template] | type[Sequence]) -> Any:
        seen: dict[int, bool] = {}

        def check(object_id: int) -> bool:
            if object_id not in seen:
                query = select(model.id).where(model.id == object_id, model.account_id == account_id)
                seen[object_id] = 0 < object_id <= MAX_INT and session.scalar(query) is not None
            return seen[object_id]

        return check

    return References(template_exists=exists(Template), sequence_exists=exists(Sequence))


def segment_exists(session: Session, account_id: int) -> Callable[[int], bool]:
    """Whether a segment id is the account's (a segment_entered trigger's check)."""
    def check(segment_id: int) -> bool:
        return 0 < segment_id <= MAX_INT and session.scalar(select(Segment.id).where(
            Segment.id == segment_id, Segment.account_id == account_id)) is not None
    return check


def topic_exists(session: Session, account_id: int) -> Callable[[str], bool]:
    """Whether the account has a topic of a key (a sequence's ``settings.topic``)."""
    def check(key: str) -> bool:
        return session.scalar(select(Topic.id).where(Topic.account_id == account_id, Topic.key == key)) is not None

    return check


def _write_steps(session: Session, sequence: Sequence, steps: list[dict[str, Any]]) -> None:
    existing = {step.position: step for step in sequence.steps}
    for position, step in enumerate(steps):
        kind, config = split_step(step)
        row = existing.pop(position, None)
        if row is None:
            sequence.steps.append(Step(position=position, type=kind, config=config))
        else:
            row.type, row.config = kind, config
    for row in existing.values():
        sequence.steps.remove(row)  # delete-orphan cascade removes the row


def create_sequence(session: Session, account_id: int, data: dict[str, Any], now: datetime) -> Sequence:
    """A new draft sequence; InvalidInputError names any bad setting or step field."""
    settings = validate_settings(data.get("settings"), segment_exists=segment_exists(session, account_id),
                                 topic_exists=topic_exists(session, account_id))
    steps = validate_steps(data.get("steps"), references(session, account_id))
    sequence = Sequence(
        account_id=account_id, name=data["name"], description=data.get("description"),
        status="draft", settings=settings, version=1, created_at=now, updated_at=now,
    )
    sequence.steps = []
    _write_steps(session, sequence, steps)
    session.add(sequence)
    session.flush()
    return sequence


def update_sequence(session: Session, account_id: int, sequence_id: int, data: dict[str, Any],
                    now: datetime, preflight: Callable[[Sequence], Preflight] | None = None,
                    override_preflight: bool = False) -> Sequence:
    """Replace name, description, settings and steps; clamp running enrollments.
    An active sequence's new content must pass ``preflight`` (when given) as
    activation's did, unless ``override_preflight``: else PreflightFailedError, and
    the caller rolls back."""
    sequence = get_sequence(session, account_id, sequence_id, lock=True)
    settings = validate_settings(data.get("settings"), segment_exists=segment_exists(session, account_id),
                                 topic_exists=topic_exists(session, account_id))
    steps = validate_steps(data.get("steps"), references(session, account_id))
    sequence.name = data["name"]
    sequence.description = data.get("description")
    sequence.settings = settings
    _write_steps(session, sequence, steps)
    sequence.version += 1
    sequence.updated_at = now
    session.flush()
    if sequence.status == "active":
        require_preflight(sequence, preflight, override_preflight)
    last = len(steps) - 1
    # The funnel sees the clamp as a move off the removed steps onto the last one.
    clamped = session.execute(
        select(Enrollment.current_step, func.count())
        .where(Enrollment.sequence_id == sequence.id, Enrollment.status.in_(("active", "paused")),
               Enrollment.current_step > last).group_by(Enrollment.current_step)).all()
    if clamped:
        moves = [(account_id, sequence.id, position, "moved", n) for position, n in clamped]
        record(session, [*moves, (account_id, sequence.id, last, "entered", sum(n for _, n in clamped))], now)
    session.execute(
        update(Enrollment)
        .where(Enrollment.sequence_id == sequence.id, Enrollment.status.in_(("active", "paused")),
               Enrollment.current_step > last)
        .values(current_step=last, updated_at=now)
    )
    return sequence


def delete_sequence(session: Session, account_id: int, sequence_id: int) -> None:
    """Delete it with its steps and enrollments (database cascades); sent messages stay in the log."""
    session.delete(get_sequence(session, account_id, sequence_id, lock=True))
    session.flush()


def transition(session: Session, account_id: int, sequence_id: int, action: str, now: datetime,
               preflight: Callable[[Sequence], Preflight] | None = None, override_preflight: bool = False) -> Sequence:
    """Apply ``activate``, ``pause`` or ``resume``; StateConflictError when not allowed
    from here. Activation also runs ``preflight`` (when given) and refuses a failing
    sequence with PreflightFailedError unless ``override_preflight``."""
    allowed_from, target = TRANSITIONS[action]
    sequence = get_sequence(session, account_id, sequence_id, lock=True)
    if sequence.status not in allowed_from:
        raise StateConflictError(f"Cannot {action} a sequence that is {sequence.status}.")
    if target == "active":
        # Templates or target sequences may have been deleted since the steps were saved.
        stored = [{"type": s.type, **s.config} for s in sequence.steps]
        validate_steps(stored, references(session, account_id))
        require_preflight(sequence, preflight, override_preflight)
    old = "active" if target == "paused" else "paused"
    session.execute(
        update(Enrollment)
        .where(and_(Enrollment.sequence_id == sequence.id, Enrollment.status == old))
        .values(status=target, updated_at=now)
    )
    sequence.status = target
    sequence.updated_at = now
    session.flush()
    return sequence


def require_preflight(sequence: Sequence, preflight: Callable[[Sequence], Preflight] | None,
                      override: bool) -> None:
    """PreflightFailedError unless the sequence passes ``preflight`` (none given,
    or ``override``: nothing to check)."""
    if preflight is not None and not override:
        report = preflight(sequence)
        if not report.passed:
            raise PreflightFailedError(report)


def active_sequences_using(session: Session, account_id: int, template_id: int) -> list[Sequence]:
    """The account's active sequences with an email step that uses the template:
    changing the template changes what they send from the next email on."""
    ids = templates_in_use(session, account_id, template_id)
    if not ids:
        return []
    return list(session.scalars(select(Sequence).where(
        Sequence.id.in_(ids), Sequence.account_id == account_id, Sequence.status == "active").order_by(Sequence.id)))


def templates_in_use(session: Session, account_id: int, template_id: int) -> list[int]:
    """Ids of the account's sequences whose email steps use the template (so deleting it is refused)."""
    rows = session.execute(
        select(Step.sequence_id, Step.config).join(Sequence, Sequence.id == Step.sequence_id)
        .where(Sequence.account_id == account_id, Step.type == "email")
    )
    return sorted({seq_id for seq_id, config in rows if (config or {}).get("template_id") == template_id})


def count_enrollments(session: Session, sequence_id: int) -> dict[str, int]:
    """Enrollments of a sequence by status."""
    return count_enrollments_of(session, [sequence_id])[sequence_id]


def count_enrollments_of(session: Session, sequence_ids: list[int]) -> dict[int, dict[str, int]]:
    """Enrollments of each sequence by status, in one grouped query (a page of a list)."""
    counts: dict[int, dict[str, int]] = {sequence_id: {} for sequence_id in sequence_ids}
    rows = session.execute(select(Enrollment.sequence_id, Enrollment.status, func.count())
                           .where(Enrollment.sequence_id.in_(sequence_ids))
                           .group_by(Enrollment.sequence_id, Enrollment.status))
    for sequence_id, status, n in rows:
        counts[sequence_id][status] = int(n)
    return counts
