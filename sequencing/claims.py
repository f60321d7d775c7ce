"""Claiming due enrollments with a lease: the query the whole timer rests on.

PostgreSQL: one statement, ``UPDATE ... WHERE id = ANY(ARRAY(SELECT ... FOR UPDATE
SKIP LOCKED LIMIT n)) RETURNING id``. Concurrent ticks skip each other's rows
instead of waiting, and the inner SELECT walks ``ix_enrollments_due (status,
next_run_at)``. ``ARRAY(...)`` matters: with ``IN (SELECT ...)`` the planner
hash-joins the subquery against a sequential scan of the whole table (95 ms of a
363 ms claim at a million rows); as an array it is computed once and the UPDATE
finds its rows by primary key, so the cost follows the number of due rows, not
the size of the table.

SQLite (the embedded default) runs one write statement at a time, so the same
statement without the lock clause gives the same guarantee.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from core.redispatch import POSTGRES, SQLITE, for_dialect, timed_text
from models import Enrollment
from models.base import utcnow
from models.bulk import ids_param

DEFAULT_LEASE = timedelta(minutes=5)

# A row still holding a lease when claimed again was never released: the worker
# advancing it died (or its task was lost), which counts as a crash of that row.
_CLAIM_SQL = """
    UPDATE enrollments SET claimed_until = :lease_until,
        crashes = CASE WHEN claimed_until IS NULL THEN crashes ELSE crashes + 1 END
    WHERE id {match} (
        SELECT id FROM enrollments
        WHERE status = 'active' AND next_run_at <= :now
          AND (claimed_until IS NULL OR claimed_until < :now)
        ORDER BY next_run_at
        LIMIT :limit
        {lock}
    ){close}
    RETURNING id, crashes
"""


_CLAIM = {
    "postgresql": timed_text(_CLAIM_SQL.format(**POSTGRES), "now", "lease_until"),
    "sqlite": timed_text(_CLAIM_SQL.format(**SQLITE), "now", "lease_until"),
}


@dataclass(frozen=True)
class Claimed:
    """What one claim leased: every id, and among them those whose last advance
    crashed (its lease ran out, or it raised), which the tick sends alone so that
    a row that kills its worker cannot take a batch of others down with it."""

    ids: list[int]
    crashed: list[int]

    @property
    def healthy(self) -> list[int]:
        crashed = set(self.crashed)
        return [i for i in self.ids if i not in crashed]


def claim_enrollments(session: Session, now: datetime, limit: int, lease: timedelta = DEFAULT_LEASE) -> Claimed:
    """Lease up to ``limit`` due enrollments until ``now + lease``.

    A lease that expires (its worker died) makes the row claimable again, which is
    how a crashed advance is retried; the claim counts it in ``crashes``.
    """
    params = {"now": now, "lease_until": now + lease, "limit": limit}
    rows = sorted(session.execute(for_dialect(session, _CLAIM), params).all())
    return Claimed(ids=[row[0] for row in rows], crashed=[row[0] for row in rows if row[1]])


def claim_due_enrollments(session: Session, now: datetime, limit: int,
                          lease: timedelta = DEFAULT_LEASE) -> list[int]:
    """``claim_enrollments``, just the ids (sorted)."""
    return claim_enrollments(session, now, limit, lease).ids



_STAMP_SQL = "UPDATE enrollments SET claimed_by = :owner, updated_at = :now WHERE id {ids} AND claimed_until IS NOT NULL"
# The ids as one array literal on PostgreSQL (models.bulk.ids_param): the ORM's
# statement bound each of an advance batch's 200 ids on its own, about 5 µs of the
# default worker's CPU an enrollment (2-3 now; a scratch loop, docs/benchmarks.md).
_STAMP = {
    "postgresql": timed_text(_STAMP_SQL.format(ids="= ANY(CAST(:ids AS bigint[]))"), "now"),
    "sqlite": timed_text(_STAMP_SQL.format(ids="IN :ids"), "now").bindparams(bindparam("ids", expanding=True)),
}


def take_claims(session: Session, ids: list[int], owner: str) -> None:
    """Stamp ``owner`` (the advancing worker's id, core.liveness) on the leased
    enrollments among ``ids``, committed before the advance starts so that the tick
    can release them if this worker dies (``release_claims``). The advance clears it."""
    if ids:
        session.execute(for_dialect(session, _STAMP), {"owner": owner, "now": utcnow(),
                                                       "ids": ids_param(session.get_bind().dialect.name, ids)})


def release_claims(session: Session, owner: str, now: datetime) -> int:
    """End the leases of enrollments ``owner``, a worker that stopped beating, was
    advancing, as if they had run out just now: the tick's next claim takes them
    again and counts the crash, as for an expired lease. Returns how many were released.

    ``claimed_by`` has no index, so that the stamp stays a heap-only update
    (migration 0039): the rows are found through ix_enrollments_due, since an
    enrollment being advanced is active and was due when the tick claimed it (the
    advance clears the stamp in the statement that moves it on). A stamped row
    that someone moved in between (rescheduled, paused) is left to its lease."""
    return int(session.execute(
        update(Enrollment).where(Enrollment.status == "active", Enrollment.next_run_at <= now,
                                 Enrollment.claimed_by == owner).values(
            claimed_until=now - JUST_EXPIRED, claimed_by=None).execution_options(synchronize_session=False),
    ).rowcount)  # type: ignore[attr-defined]


def release_unstarted_claims(session: Session, now: datetime) -> int:
    """The broker lost its tasks: enrollments the tick leased whose advance never
    started (no owner stamped) are due again now, not a lease later. An advance
    task that survived after all and runs too writes nothing twice (the outbox's
    keys)."""
    return int(session.execute(
        update(Enrollment).where(Enrollment.status == "active", Enrollment.next_run_at <= now,
                                 Enrollment.claimed_until > now, Enrollment.claimed_by.is_(None))
        .values(claimed_until=now - JUST_EXPIRED).execution_options(synchronize_session=False),
    ).rowcount)  # type: ignore[attr-defined]


# How far before ``now`` a released lease is set, so a claim at the same instant takes it.
JUST_EXPIRED = timedelta(milliseconds=1)
