"""The tick's release of work held by worker processes that stopped beating
(core.liveness): their ``sending`` messages go to the normal in-doubt handling at
once instead of waiting out the send lease (ESEQ_LEASE_SECONDS, 300 s)."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from core.liveness import forget_released, mark_released, silent_workers
from delivery.outbox import release_dead_claims

# A released worker's row is kept this long (operators can see who died and what it
# held), then dropped.
KEEP_RELEASED = timedelta(days=1)


def release_dead_workers(session: Session, now: datetime, dead_after: timedelta) -> dict[str, int]:
    """Release the claims of every worker silent for longer than ``dead_after``;
    returns the messages released per worker. Call before the outbox sweep
    (outbox.claim_for_dispatch), which then hands them out again."""
    released = {}
    for worker_id in silent_workers(session, now, dead_after):
        released[worker_id] = release_dead_claims(session, worker_id, now)
        mark_released(session, worker_id, now, released[worker_id])
    forget_released(session, now - KEEP_RELEASED)
    return released
