"""Turning an account's new events into batches for its event subscriptions.

Each subscription reads the events after its cursor and below the horizon of
running transactions (analytics.rollups.event_horizon), in (xact, id) order, as
the rollups' fold does: an event whose transaction commits after a later id was
read is still ahead of the cursor, so none is skipped, and none is read twice.
The events it asked for become delivery rows of up to ``BATCH`` events each, and
the cursor moves past everything read, in one transaction under a lock on the
subscription row: a feeder killed midway writes nothing, and two feeders never
batch the same events. Completed enrollments are found the same way through
``step_transitions``, where the engine counts them (``_completions``). Imported
history (source ``import``) is never delivered: it happened elsewhere, before.

Nothing in the write paths of events knows about subscriptions; the cost is the
feed's delay (beat's ``FEED_EVERY_SECONDS``) and two backward index probes per
account with subscriptions per run (``subscriptions_with_news``).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from analytics.rollups import event_horizon
from models import Enrollment, Event, EventDelivery, EventSubscription, Message, Sequence, StepTransition, Subscriber
from models.bulk import insert_rows_returning
from models.event import IMPORTED
from webhooks.event_types import COMPLETED, CONVERSION, type_of

BATCH = 100  # events per POST at most
READ = 5_000  # events read per subscription per run; the rest wait for the next
DISPATCH_LEASE = timedelta(seconds=60)  # a new batch is handed on by its feeder, not the sweep, for this long


def _newest(session: Session, table: Any, account_id: int) -> tuple[int, int]:
    """The account's newest (xact, id) in ``table``: one backward probe of its (account_id, xact, id) index."""
    row = session.execute(select(table.xact, table.id).where(table.account_id == account_id)
                          .order_by(table.xact.desc(), table.id.desc()).limit(1)).first()
    return (int(row.xact), int(row.id)) if row is not None else (0, 0)


def subscriptions_with_news(session: Session) -> list[int]:
    """Subscriptions not paused with an event or a step transition past their cursors.

    Compared with each account's newest rows, read once per account: an EXISTS of
    rows past a cursor correlated per subscription was planned as a scan of the
    account's events (the planner expects a third of them to qualify), seconds
    for an account with a million events."""
    subs = session.execute(select(EventSubscription.id, EventSubscription.account_id, EventSubscription.cursor_xact,
                                  EventSubscription.cursor_id, EventSubscription.flow_xact, EventSubscription.flow_id)
                           .where(EventSubscription.paused.is_(False)).order_by(EventSubscription.id)).all()
    newest = {a: (_newest(session, Event, a), _newest(session, StepTransition, a)) for a in {s.account_id for s in subs}}
    return [s.id for s in subs if newest[s.account_id][0] > (s.cursor_xact, s.cursor_id)
            or newest[s.account_id][1] > (s.flow_xact, s.flow_id)]


def _goals(session: Session, account_id: int) -> dict[str, list[int]]:
    """Goal event name -> the account's sequences whose goal it is."""
    goals: dict[str, list[int]] = {}
    for sequence_id, settings in session.execute(select(Sequence.id, Sequence.settings)
                                                 .where(Sequence.account_id == account_id).order_by(Sequence.id)):
        goal = (settings or {}).get("goal")
        if isinstance(goal, dict) and goal.get("event"):
            goals.setdefault(str(goal["event"]), []).append(sequence_id)
    return goals


def _event(row: Any, kind: str, goals: dict[str, list[int]]) -> dict[str, Any]:
    """One event as delivered; ``id`` is stable (the recorded event's), for de-duplication."""
    data: dict[str, Any] = {"subscriber_id": row.subscriber_id, "email": row.email}
    if row.message_id is not None:
        data |= {"message_id": row.message_id, "sequence_id": row.sequence_id, "step_id": row.step_id,
                 "subject": row.subject}
    if kind == CONVERSION:
        data |= {"event": row.name, "value": row.value, "sequence_ids": goals[row.name]}
    if row.properties:
        data["properties"] = row.properties
    return {"id": f"evt_{row.id}", "type": kind, "occurred_at": row.occurred_at.isoformat(), "data": data}


def _recorded(session: Session, sub: EventSubscription, horizon: int, limit: int) -> list[dict[str, Any]]:
    """The subscription's next recorded events it asked for; moves its events cursor."""
    rows = session.execute(
        select(Event.id, Event.xact, Event.name, Event.source, Event.subscriber_id, Event.message_id,
               Event.properties, Event.value, Event.occurred_at, Subscriber.email, Message.subject,
               Message.sequence_id, Message.step_id)
        .outerjoin(Subscriber, Subscriber.id == Event.subscriber_id)
        .outerjoin(Message, Message.id == Event.message_id)
        .where(Event.account_id == sub.account_id,
               tuple_(Event.xact, Event.id) > tuple_(sub.cursor_xact, sub.cursor_id), Event.xact < horizon)
        .order_by(Event.xact, Event.id).limit(limit)).all()
    if not rows:
        return []
    sub.cursor_xact, sub.cursor_id = int(rows[-1].xact), int(rows[-1].id)
    goals = _goals(session, sub.account_id)
    goal_names, wanted = frozenset(goals), set(sub.events)
    events = []
    for row in rows:
        kind = type_of(row.name, goal_names)
        if kind in wanted and row.source != IMPORTED:
            events.append(_event(row, kind, goals))
    return events


def _completions(session: Session, sub: EventSubscription, horizon: int, limit: int) -> list[dict[str, Any]]:
    """Enrollments completed since the subscription's step-transitions cursor; moves it.

    The engine counts completions per batch in step_transitions (core.flow), in the
    transaction that completes them and with the batch's time, which is also each
    enrollment's ``completed_at``: a ``completed`` row names its sequence and that
    time, and the enrollments are found by them (ix_enrollments_sequence_completed)."""
    moves = session.execute(
        select(StepTransition.id, StepTransition.xact, StepTransition.kind, StepTransition.sequence_id,
               StepTransition.occurred_at)
        .where(StepTransition.account_id == sub.account_id,
               tuple_(StepTransition.xact, StepTransition.id) > tuple_(sub.flow_xact, sub.flow_id),
               StepTransition.xact < horizon)
        .order_by(StepTransition.xact, StepTransition.id).limit(limit)).all()
    if not moves:
        return []
    sub.flow_xact, sub.flow_id = int(moves[-1].xact), int(moves[-1].id)
    if COMPLETED not in sub.events:
        return []
    events = []
    for sequence_id, at in sorted({(m.sequence_id, m.occurred_at) for m in moves if m.kind == "completed"}):
        for row in session.execute(
                select(Enrollment.id, Enrollment.run, Enrollment.subscriber_id, Enrollment.completed_at,
                       Subscriber.email)
                .join(Subscriber, Subscriber.id == Enrollment.subscriber_id)
                .where(Enrollment.sequence_id == sequence_id, Enrollment.completed_at == at,
                       Enrollment.status == "completed", Enrollment.account_id == sub.account_id)
                .order_by(Enrollment.id)):
            events.append({"id": f"enr_{row.id}_completed", "type": COMPLETED,
                           "occurred_at": row.completed_at.isoformat(),
                           "data": {"subscriber_id": row.subscriber_id, "email": row.email,
                                    "sequence_id": sequence_id, "enrollment_id": row.id, "run": row.run}})
    return events


def feed(session: Session, subscription_id: int, now: datetime, batch: int = BATCH, limit: int = READ) -> list[int]:
    """Batch the subscription's next events into delivery rows, in the caller's
    transaction (which must not have written yet: the horizon is read first);
    returns the new rows' ids, to hand on after commit. Nothing when another
    feeder holds the subscription."""
    dialect = session.get_bind().dialect.name
    horizon = event_horizon(session, dialect, now)[0]
    query = select(EventSubscription).where(EventSubscription.id == subscription_id,
                                            EventSubscription.paused.is_(False))
    if dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    sub = session.scalars(query.execution_options(populate_existing=True)).first()
    if sub is None:
        return []
    events = _recorded(session, sub, horizon, limit) + _completions(session, sub, horizon, limit)
    if not events:
        return []
    # One INSERT for every batch of the run (models.bulk), the ids in row order.
    return insert_rows_returning(session, EventDelivery.__table__, [
        {"account_id": sub.account_id, "subscription_id": sub.id, "payload": {"events": chunk},
         "event_count": len(chunk), "status": "queued", "attempts": 0, "created_at": now,
         "claimed_until": now + DISPATCH_LEASE}
        for chunk in (events[i:i + batch] for i in range(0, len(events), batch))])
