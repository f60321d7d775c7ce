"""The tick's release of work held by worker processes that stopped beating
(core.liveness): their enrollments and ``sending`` messages go back to the normal
crash handling at once instead of waiting out the lease (ESEQ_LEASE_SECONDS, 300 s).
Likewise for work handed to a broker that lost it."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy.orm import Session

from core.liveness import forget_released, mark_released, silent_workers
from delivery.outbox import release_dead_claims, release_dispatch_leases
from sequencing.claims import release_claims, release_unstarted_claims

# A released worker's row is kept this long (operators can see who died and what it
# held), then dropped.
KEEP_RELEASED = timedelta(days=1)


class Released(NamedTuple):
    """What the release found of one silent worker."""

    held: int  # messages and enrollments it had claimed, released now
    stopped: bool  # it said it was stopping (core.liveness.mark_stopped)

    @property
    def died(self) -> bool:
        """Killed, or stopped while holding claims: it may have died holding tasks
        it had taken from the broker and not started, which no claim shows."""
        return self.held > 0 or not self.stopped


def release_dead_workers(session: Session, now: datetime, dead_after: timedelta) -> dict[str, Released]:
    """Release the claims of every worker silent for longer than ``dead_after``;
    returns, per worker, how many messages and enrollments were released and whether
    it had stopped cleanly. Call before the tick claims
    (sequencing.claims.claim_enrollments, outbox.claim_for_dispatch), which then
    hand them out again."""
    released = {}
    for worker_id, stopped in silent_workers(session, now, dead_after):
        messages, enrollments = release_dead_claims(session, worker_id, now), release_claims(session, worker_id, now)
        mark_released(session, worker_id, now, messages, enrollments)
        released[worker_id] = Released(messages + enrollments, stopped)
    forget_released(session, now - KEEP_RELEASED)
    return released


def release_lost_hand_overs(session: Session, now: datetime) -> dict[str, int]:
    """The broker lost its tasks (a flush, a restart without persistence): what was
    handed to it and not yet started, queued messages and leased enrollments, is due
    again now instead of a lease later. Returns how many of each."""
    return {"messages": release_dispatch_leases(session, now), "enrollments": release_unstarted_claims(session, now)}
