"""Broadcasts' steps (broadcasts.sending) on the default pool, taken by beat's
``broadcasts.run_due``: each claimed step commits with its bookkeeping."""
from __future__ import annotations

import time

from broadcasts.sending import LEASE, claim_due, run_step
from models.base import utcnow
from models.db import session_scope
from tasks.app import app

# A run takes no new step after this long: a million-member start can take a
# minute or more, and the next beat run (every tick) takes whatever is still due.
CLAIM_FOR_SECONDS = 60.0
# The hard limit stays under a step's lease, so a step the limit kills has rolled
# back before another worker may claim it again.
HARD_LIMIT = LEASE.total_seconds() - 60


@app.task(name="broadcasts.run_due", ignore_result=True, soft_time_limit=HARD_LIMIT - 60, time_limit=HARD_LIMIT)
def run_due() -> int:
    """Run the due steps of scheduled, testing and sending broadcasts."""
    done, started = 0, time.monotonic()
    while time.monotonic() - started < CLAIM_FOR_SECONDS:
        with session_scope() as session:
            claimed = claim_due(session, utcnow())
        if claimed is None:
            break
        with session_scope() as session:
            run_step(session, claimed, utcnow())
        done += 1
    return done
