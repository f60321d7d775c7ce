"""Broadcasts' steps (broadcasts.sending) on the default pool, taken by beat's
``broadcasts.run_due``: each claimed step commits with its bookkeeping."""
from __future__ import annotations

from broadcasts.sending import claim_due, run_step
from models.base import utcnow
from models.db import session_scope
from tasks.app import app

# Steps per run: a run that found more due leaves them to the next (a million-member
# start can take most of a minute).
MAX_STEPS = 20


@app.task(name="broadcasts.run_due", ignore_result=True)
def run_due() -> int:
    """Run the due steps of scheduled, testing and sending broadcasts."""
    done = 0
    for _ in range(MAX_STEPS):
        with session_scope() as session:
            claimed = claim_due(session, utcnow())
        if claimed is None:
            break
        with session_scope() as session:
            run_step(session, claimed, utcnow())
        done += 1
    return done
