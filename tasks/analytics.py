"""The analytics pool's rollups: beat's ``analytics.fold_rollups`` folds every
account's new events (analytics.rollups), one committed chunk at a time."""
from __future__ import annotations

from time import monotonic

from analytics.rollups import CHUNK, accounts_with_events, fold_chunk
from models.base import utcnow
from models.db import session_scope
from tasks.app import app

# Under the beat interval's expiry and far under the task time limit: a backlog
# longer than this is taken up by the next run, where the watermark left it.
FOLD_BUDGET_SECONDS = 45.0


@app.task(name="analytics.fold_rollups", ignore_result=True)
def fold_rollups(chunk: int = CHUNK) -> int:
    """Events folded. An account another worker is folding is skipped, not waited
    for: that worker moves its watermark, and the next run starts after it."""
    deadline = monotonic() + FOLD_BUDGET_SECONDS
    with session_scope() as session:
        accounts = accounts_with_events(session)
    folded = 0
    for account_id in accounts:
        while monotonic() < deadline:
            with session_scope() as session:
                fold = fold_chunk(session, account_id, utcnow(), limit=chunk, wait=False)
            if fold is None:
                break
            folded += fold.events
            if fold.caught_up:
                break
    return folded
