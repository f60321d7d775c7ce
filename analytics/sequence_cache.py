"""Counts of a sequence that take seconds at a million enrollments (the holdout
groups' conversions, the experiment arms' held visits and conversions), served
from a cache the analytics pool refreshes (models.sequence_analysis).

- A small sequence (at most SYNC_LIMIT enrollments, or held visits for the
  arms, found by a probe that stops counting there) is counted live on every
  request, as of that request: its join is a few index probes. Once found large
  it has a row here and is not probed again.
- A large one is answered from the stored counts, with their ``as_of`` (when
  their snapshot was read). Counts older than REFRESH, or stored under other
  settings (another goal, another experiment), are asked of the pool again:
  the request keeps answering from the last counts that fit the settings, and
  marks the row ``queued`` for the caller to enqueue (analytics.compute_sequence_
  analysis). Only when no stored counts fit does the request count them itself
  (once; seconds) and store them, so the endpoint keeps answering 200.

The counts are stored with the settings they were counted under (``key``): a
goal changed since is never answered with the old goal's counts. Nothing here
commits; callers do.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import perf_counter
from typing import Any

from sqlalchemy import ColumnElement, select, text
from sqlalchemy.orm import Session

from analytics import leases
from models import Sequence
from models.bulk import dialect_insert
from models.sequence_analysis import SEQUENCE_ANALYSIS_KINDS, SequenceAnalysis

# Counted live up to this many enrollments (held visits): the join with the goal
# events is then index probes per row, not a scan of the account's goal events.
SYNC_LIMIT = 10_000
REFRESH = timedelta(seconds=60)
LEASE = timedelta(minutes=6)


@dataclass(frozen=True)
class Counted:
    """What a kind counts: ``key`` (the settings the counts depend on), ``size``
    (how many rows the count walks, up to a limit) and ``count`` (JSON-able)."""
    key: Callable[[Sequence], Any]
    size: Callable[[Session, Sequence, int], int]
    count: Callable[[Session, Sequence], Any]


def counted_for(kind: str) -> Counted:
    """The kind's counting, from the module that owns it (imported here, at call
    time: both import this module)."""
    from analytics.experiment_results import ARMS
    from analytics.holdout import HOLDOUT

    kinds = {"holdout": HOLDOUT, "experiment_arms": ARMS}
    assert set(kinds) == set(SEQUENCE_ANALYSIS_KINDS)
    return kinds[kind]


@dataclass(frozen=True)
class Served:
    counts: Any
    as_of: datetime
    # True when the caller should enqueue a recount on the analytics pool (after committing).
    ask: bool


def probe(session: Session, sql: str, params: dict[str, Any], limit: int) -> int:
    """How many rows ``sql`` (a SELECT of anything) yields, counting no further than ``limit``."""
    return int(session.execute(text(f"SELECT count(*) FROM ({sql} LIMIT :probe_limit) p"),
                               {**params, "probe_limit": limit}).scalar() or 0)


def serve(session: Session, sequence: Sequence, kind: str, now: datetime, refresh: bool = True) -> Served:
    """The counts of ``kind`` for ``sequence``: live when small, else the stored ones
    (see the module); without ``refresh``, stored ones of any age are not asked for again."""
    counted = counted_for(kind)
    key = counted.key(sequence)
    row = session.scalar(select(SequenceAnalysis).where(SequenceAnalysis.sequence_id == sequence.id,
                                                        SequenceAnalysis.kind == kind)
                         .execution_options(populate_existing=True))
    if row is not None and row.result is not None and row.result.get("key") == key and row.computed_at is not None:
        # Only a sequence found large has a row: served without probing its size again.
        ask = refresh and row.computed_at < now - REFRESH and request(session, sequence, kind, now)
        return Served(row.result["counts"], row.computed_at, ask)
    if counted.size(session, sequence, SYNC_LIMIT + 1) <= SYNC_LIMIT:
        return Served(counted.count(session, sequence), now, False)
    return Served(store(session, sequence, kind, now), now, False)


def _row(sequence_id: int, kind: str) -> ColumnElement[bool]:
    return (SequenceAnalysis.sequence_id == sequence_id) & (SequenceAnalysis.kind == kind)


def request(session: Session, sequence: Sequence, kind: str, now: datetime) -> bool:
    """Mark the counts wanted again (analytics.leases.request)."""
    return leases.request(session, SequenceAnalysis, _row(sequence.id, kind), now)


def claim(session: Session, sequence_id: int, kind: str, now: datetime) -> bool:
    """Take the recount for LEASE (analytics.leases.claim)."""
    return leases.claim(session, SequenceAnalysis, _row(sequence_id, kind), now, LEASE)


def store(session: Session, sequence: Sequence, kind: str, now: datetime) -> Any:
    """Count now and store the counts (a new row or over the old one): ``ready``."""
    counted = counted_for(kind)
    started = perf_counter()
    counts = counted.count(session, sequence)
    values = {"status": "ready", "claimed_until": None, "computed_at": now, "error": None,
              "result": {"key": counted.key(sequence), "counts": counts}, "seconds": round(perf_counter() - started, 3)}
    insert = dialect_insert(session, SequenceAnalysis).values(account_id=sequence.account_id, sequence_id=sequence.id,
                                                              kind=kind, requested_at=now, **values)
    session.execute(insert.on_conflict_do_update(index_elements=["sequence_id", "kind"], set_=values))
    return counts


def fail(session: Session, sequence_id: int, kind: str, error: str) -> None:
    leases.fail(session, SequenceAnalysis, _row(sequence_id, kind), error)


def waiting(session: Session, now: datetime) -> list[tuple[int, str]]:
    """(sequence, kind) asked for and not taken up (a broker that refused the
    task), or abandoned by a dead worker: for beat's refresh to hand on."""
    s = SequenceAnalysis
    rows = session.execute(select(s.sequence_id, s.kind).where(leases.waiting(s, now)).order_by(s.sequence_id, s.kind))
    return [(int(sequence_id), str(kind)) for sequence_id, kind in rows]


def recount(session: Session, sequence_id: int, kind: str, now: datetime) -> bool:
    """The pool's recount of a claimed row: count and store; False when the
    sequence is gone (its row went with it)."""
    sequence = session.get(Sequence, sequence_id)
    if sequence is None:
        return False
    store(session, sequence, kind, now)
    return True
