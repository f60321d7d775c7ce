"""Sending a broadcast: fix the audience and queue its messages into the outbox,
each step committed together with the broadcast's bookkeeping, so that a worker
killed at any point leaves the step either undone (the next run does it again;
the outbox's unique key ``broadcast:{id}:{subscriber_id}`` inserts no one twice)
or done.

1. **start** (``scheduled``, at ``send_at``): one INSERT ... SELECT writes a
   message for every active member, which is what fixes the audience. Without a
   test each is due at once, at ``local_time`` or at the learned hour
   (broadcasts.send_times); with a test, the test share (a deterministic draw) is
   due at once with the variants split evenly, and the rest is held (due
   ``HELD_UNTIL``, no variant) -> ``testing``.
2. **decide** (``testing``, ``wait_seconds`` later): the experiments' decision rule
   (broadcasts.subject_test) names the winner; one UPDATE gives the held messages
   the winner and their due moment -> ``sending``.
3. **finish** (``sending``): once none of its messages is unfinished -> ``sent``.

The messages are then the outbox's like any other: the tick's sweep hands due
ones to the send pool (``claimed_until`` is set to the step's moment, so the next
tick takes them), and the sender applies suppression, warming caps, provider
rates and failover, and renders them from the broadcast (delivery.sender).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import BigInteger, Integer, String, and_, case, cast, exists, literal, literal_column, null, select, update
from sqlalchemy.orm import Session

from broadcasts.audience import AudienceGoneError, audience
from broadcasts.send_times import due_expression
from broadcasts.subject_test import pick_winner
from models import Broadcast, Message, Subscriber, SubscriberScore, Template
from models.base import UTCDateTime
from models.bulk import dialect_insert

log = logging.getLogger(__name__)

# A held message (the rest of a subject test's audience) is due "never" until the decision.
HELD_UNTIL = datetime(9999, 1, 1, tzinfo=timezone.utc)
# A step's claim: long enough for a million-member insert on a busy machine.
LEASE = timedelta(minutes=15)
# How often a sending broadcast looks whether all its messages are finished.
FINISH_CHECK = timedelta(seconds=30)
# The deterministic draw: a multiplicative hash of the subscriber id (Knuth's
# constant), salted by the broadcast, modulo 2**32; its remainder by 100 decides
# the test share, a second hash the variant, so the two are independent.
_HASH_A, _HASH_B, _SALT = 2654435761, 2246822519, 40503
ACTIVE_STATUSES = ("scheduled", "testing", "sending")


def _draw(broadcast_id: int, multiplier: int) -> Any:
    sid = cast(Subscriber.id, BigInteger)
    return (sid * literal(multiplier, BigInteger) + literal(broadcast_id * _SALT, BigInteger)) % literal(2**32, BigInteger)


def content(session: Session, broadcast: Broadcast) -> dict[str | None, str]:
    """The subject of each variant (None: the broadcast's own), as the sender will
    resolve it: template, overridden by the broadcast, overridden by the variant."""
    base = broadcast.subject
    if not base and broadcast.template_id:
        base = session.scalar(select(Template.subject).where(Template.id == broadcast.template_id,
                                                             Template.account_id == broadcast.account_id))
    subjects: dict[str | None, str] = {None: base or ""}
    for variant in broadcast.variants or []:
        subjects[variant["name"]] = variant.get("subject") or base or ""
    return subjects


def _by_variant(names: list[str], index: Any, mapping: dict[str | None, str] | None = None) -> Any:
    """CASE index WHEN 0 THEN names[0] ... (or the mapped value of each name)."""
    values = [mapping[n] for n in names] if mapping is not None else names
    return case({i: literal(v) for i, v in enumerate(values)}, value=index)


def _start(session: Session, broadcast: Broadcast, now: datetime) -> None:
    members = audience(session, broadcast, now)
    subjects = content(session, broadcast)
    names = [v["name"] for v in broadcast.variants or []]
    test = broadcast.test or None
    now_at = literal(now, UTCDateTime())
    hour_of = select(SubscriberScore.best_send_hour).where(SubscriberScore.subscriber_id == Subscriber.id) \
        .scalar_subquery()
    # A test's share goes at once and the rest is held: their moments come at the decision.
    due = now_at if test else due_expression(session, members, now, broadcast.local_time, broadcast.best_time,
                                             Subscriber.timezone, hour_of)
    if names:
        pick = _draw(broadcast.id, _HASH_B) % len(names)
        variant: Any = _by_variant(names, pick)
        subject: Any = _by_variant(names, pick, subjects)
    else:
        variant, subject = null(), literal(subjects[None])
    if test:
        in_test = _draw(broadcast.id, _HASH_A) % 100 < int(test["percent"])
        variant = case((in_test, variant), else_=null())
        subject = case((in_test, subject), else_=literal(subjects[None]))
        due = case((in_test, due), else_=literal(HELD_UNTIL, UTCDateTime()))
    rows = select(
        literal(broadcast.account_id, Integer), Subscriber.id, literal(broadcast.id, Integer), variant,
        literal(f"broadcast:{broadcast.id}:") + cast(Subscriber.id, String), literal("queued"), Subscriber.email,
        subject, literal(0, Integer), literal_column("'{}'"), now_at, now_at, due, now_at,
    ).where(Subscriber.account_id == broadcast.account_id, Subscriber.status == "active", Subscriber.id.in_(members))
    columns = ["account_id", "subscriber_id", "broadcast_id", "variant", "idempotency_key", "status", "to_email",
               "subject", "attempts", "meta", "created_at", "updated_at", "retry_at", "claimed_until"]
    inserted = session.execute(dialect_insert(session, Message).from_select(columns, rows).on_conflict_do_nothing())
    broadcast.audience_size = (broadcast.audience_size or 0) + max(inserted.rowcount or 0, 0)
    broadcast.started_at = now
    if test:
        broadcast.status = "testing"
        broadcast.next_run_at = now + timedelta(seconds=int(test["wait_seconds"]))
    else:
        broadcast.status = "sending"
        broadcast.next_run_at = now + FINISH_CHECK


def _decide(session: Session, broadcast: Broadcast, now: datetime) -> None:
    decision = pick_winner(session, broadcast)
    winner = decision["winner"]
    subjects = content(session, broadcast)
    held = select(Message.subscriber_id).where(Message.broadcast_id == broadcast.id, Message.variant.is_(None))
    zone_of = select(Subscriber.timezone).where(Subscriber.id == Message.subscriber_id).scalar_subquery()
    hour_of = select(SubscriberScore.best_send_hour).where(SubscriberScore.subscriber_id == Message.subscriber_id) \
        .scalar_subquery()
    due = due_expression(session, held, now, broadcast.local_time, broadcast.best_time, zone_of, hour_of)
    session.execute(update(Message).where(
        Message.broadcast_id == broadcast.id, Message.variant.is_(None), Message.status == "queued",
    ).values(variant=winner, subject=subjects.get(winner, subjects[None]), retry_at=due, claimed_until=now,
             updated_at=now).execution_options(synchronize_session=False))
    broadcast.winner, broadcast.decision, broadcast.decided_at = winner, decision, now
    broadcast.status = "sending"
    broadcast.next_run_at = now + FINISH_CHECK


def unfinished(session: Session, broadcast_id: int) -> bool:
    """Whether any message of the broadcast may still be sent (through its partial index,
    or the index of every unsettled message, whichever the planner finds smaller)."""
    return bool(session.scalar(select(exists().where(Message.broadcast_id == broadcast_id,
                                                     literal_column("NOT settled")))))


def _finish(session: Session, broadcast: Broadcast, now: datetime) -> None:
    if unfinished(session, broadcast.id):
        broadcast.next_run_at = now + FINISH_CHECK
        return
    broadcast.status, broadcast.finished_at, broadcast.next_run_at = "sent", now, None


STEPS = {"scheduled": _start, "testing": _decide, "sending": _finish}


@dataclass(frozen=True)
class Claimed:
    id: int
    status: str
    lease_until: datetime


def claim_due(session: Session, now: datetime, lease: timedelta = LEASE) -> Claimed | None:
    """Take the most overdue broadcast with a step to run (a conditional UPDATE: two
    workers racing for one get one each or nothing)."""
    due = and_(Broadcast.status.in_(ACTIVE_STATUSES), Broadcast.next_run_at <= now)
    free = (Broadcast.claimed_until.is_(None)) | (Broadcast.claimed_until < now)
    for broadcast_id, status in session.execute(select(Broadcast.id, Broadcast.status).where(due, free)
                                                .order_by(Broadcast.next_run_at).limit(5)):
        taken = session.execute(update(Broadcast).where(Broadcast.id == broadcast_id, Broadcast.status == status,
                                                        due, free)
                                .values(claimed_until=now + lease).execution_options(synchronize_session=False))
        if taken.rowcount:
            return Claimed(broadcast_id, status, now + lease)
    return None


def run_step(session: Session, claimed: Claimed, now: datetime) -> str:
    """Run the claimed broadcast's next step; the caller commits (the step's rows and
    the bookkeeping together). Returns the new status. A cancel that landed since
    the claim wins: the status UPDATE comes first and is conditional, so it waits
    for a concurrent cancel's commit and then finds nothing to move."""
    moved = session.execute(update(Broadcast).where(
        Broadcast.id == claimed.id, Broadcast.status == claimed.status,
        Broadcast.claimed_until == claimed.lease_until).values(updated_at=now)
        .execution_options(synchronize_session=False))
    if not moved.rowcount:
        return "superseded"
    broadcast = session.get(Broadcast, claimed.id, populate_existing=True)
    assert broadcast is not None
    try:
        STEPS[claimed.status](session, broadcast, now)
    except AudienceGoneError as exc:
        broadcast.status, broadcast.error, broadcast.cancelled_at, broadcast.next_run_at = \
            "cancelled", f"cannot send: {exc}", now, None
    broadcast.claimed_until = None
    session.flush()
    log.info("broadcast step", extra={"broadcast_id": broadcast.id, "from": claimed.status, "to": broadcast.status})
    return broadcast.status
