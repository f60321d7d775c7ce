"""The cache of account analyses (models.account_analysis): asking for one,
claiming its computation, storing the answer, and finding the stale ones.

The web asks (``request_analysis``) and serves what is stored; the analytics pool
computes (``compute_analysis``). A computation is claimed by a conditional UPDATE
with a lease, so two workers handed the same account compute it once, and a
worker that died leaves a lease that the beat's next refresh sees lapsed.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from time import perf_counter
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session

from analytics import account_data
from analytics.cohorts import compute_cohorts
from analytics.ltv import compute_ltv
from analytics.rfm import compute_rfm
from models import Event, Subscriber
from models.account_analysis import ANALYSIS_KINDS, AccountAnalysis
from models.bulk import dialect_insert

COMPUTE: dict[str, Callable[..., dict[str, Any]]] = {
    "cohorts": compute_cohorts, "rfm": compute_rfm, "ltv": compute_ltv}
# Kinds that read the same data (every customer's purchases): computing one also
# computes the other when its row is stale and no other worker holds it, from the
# one read (account_data.Reads), and its task then finds it fresh.
TOGETHER = {"cohorts": (), "rfm": ("ltv",), "ltv": ("rfm",)}
# Far above the 10 s a million subscribers take, under the task time limit.
LEASE = timedelta(minutes=6)
assert set(COMPUTE) == set(ANALYSIS_KINDS)


def get_analysis(session: Session, account_id: int, kind: str) -> AccountAnalysis | None:
    return session.scalar(select(AccountAnalysis).where(AccountAnalysis.account_id == account_id,
                                                        AccountAnalysis.kind == kind))


def request_analysis(session: Session, account_id: int, kind: str, now: datetime) -> bool:
    """Ask for a computation: a new row ``queued``, or a failed one queued again.
    True when the caller should enqueue it (after committing)."""
    inserted = session.execute(dialect_insert(session, AccountAnalysis).values(
        account_id=account_id, kind=kind, status="queued", requested_at=now, source_event_id=0,
        source_subscriber_id=0).on_conflict_do_nothing()).rowcount
    if inserted:
        return True
    return bool(session.execute(update(AccountAnalysis).where(
        AccountAnalysis.account_id == account_id, AccountAnalysis.kind == kind, AccountAnalysis.status == "failed")
        .values(status="queued", requested_at=now, error=None)).rowcount)


def claim_analysis(session: Session, account_id: int, kind: str, now: datetime) -> bool:
    """Take the computation for LEASE; False when another worker holds it."""
    return bool(session.execute(update(AccountAnalysis).where(
        AccountAnalysis.account_id == account_id, AccountAnalysis.kind == kind,
        or_(AccountAnalysis.status != "computing", AccountAnalysis.claimed_until < now))
        .values(status="computing", claimed_until=now + LEASE)).rowcount)


def is_fresh(session: Session, account_id: int, kind: str) -> bool:
    """Stored, and computed from the account's newest event and subscriber: nothing to compute."""
    row = get_analysis(session, account_id, kind)
    return (row is not None and row.status == "ready" and row.result is not None
            and (row.source_event_id, row.source_subscriber_id) == account_data.watermark(session, account_id))


def compute_analysis(session: Session, account_id: int, kind: str, now: datetime) -> dict[str, Any]:
    """Compute and store the answer (the caller commits), and those of TOGETHER's
    kinds that are asked for, stale and claimable, from the same reads. The
    watermark is read first, so data arriving during the computation makes the
    result stale rather than being taken for counted. A kind's ``seconds`` count
    the reads it made first."""
    account_data.prepare(session)
    source_event, source_subscriber = account_data.watermark(session, account_id)
    reads = account_data.Reads(session, account_id)
    kinds = [kind] + [other for other in TOGETHER[kind] if get_analysis(session, account_id, other) is not None
                      and not is_fresh(session, account_id, other) and claim_analysis(session, account_id, other, now)]
    results = {}
    for each in kinds:
        started = perf_counter()
        results[each] = COMPUTE[each](session, account_id, now, reads)
        session.execute(update(AccountAnalysis).where(AccountAnalysis.account_id == account_id,
                                                      AccountAnalysis.kind == each)
                        .values(status="ready", claimed_until=None, computed_at=now, result=results[each],
                                source_event_id=source_event, source_subscriber_id=source_subscriber,
                                seconds=round(perf_counter() - started, 3), error=None))
    return results[kind]


def fail_analysis(session: Session, account_id: int, kind: str, error: str) -> None:
    session.execute(update(AccountAnalysis).where(AccountAnalysis.account_id == account_id,
                                                  AccountAnalysis.kind == kind)
                    .values(status="failed", claimed_until=None, error=error[:2000]))


def stale_analyses(session: Session, now: datetime) -> list[tuple[int, str]]:
    """(account, kind) to compute: asked for and not taken up, abandoned by a dead
    worker, or computed before the account's newest event or subscriber."""
    a = AccountAnalysis
    newer_event = exists().where(Event.account_id == a.account_id, Event.id > a.source_event_id)
    newer_subscriber = exists().where(Subscriber.account_id == a.account_id, Subscriber.id > a.source_subscriber_id)
    rows = session.execute(select(a.account_id, a.kind).where(or_(
        a.status == "queued", and_(a.status == "computing", a.claimed_until < now),
        and_(a.status.in_(("ready", "failed")), or_(newer_event, newer_subscriber))))
        .order_by(a.account_id, a.kind)).all()
    return [(int(a), str(k)) for a, k in rows]
