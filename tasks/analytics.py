"""The analytics pool's rollups: beat's ``analytics.fold_rollups`` hands each
account with new events to ``analytics.fold_account``, which folds its new events
(analytics.rollups) one committed chunk at a time. One task per account, so one
account's backlog neither holds up the others nor waits for one worker."""
from __future__ import annotations

from time import monotonic

from analytics.experiment_results import settle_experiments
from analytics.firsts import CHUNK as PRUNE_CHUNK
from analytics.firsts import first_young_message, prune_firsts
from analytics.rollups import CHUNK, accounts_with_new_events, fold_chunk
from models.base import utcnow
from models.db import session_scope
from schedules.beat import FOLD_EVERY_SECONDS
from tasks.app import app

# Far under the task time limit: a backlog longer than this is taken up by the
# next run, where the watermark left it.
FOLD_BUDGET_SECONDS = 45.0


@app.task(name="analytics.fold_rollups", ignore_result=True)
def fold_rollups(chunk: int = CHUNK) -> int:
    """Hand on every account with events past its watermark."""
    with session_scope() as session:
        accounts = accounts_with_new_events(session)
    for account_id in accounts:
        fold_account.apply_async((account_id, chunk), expires=FOLD_EVERY_SECONDS)
    return len(accounts)


@app.task(name="analytics.fold_account", ignore_result=True)
def fold_account(account_id: int, chunk: int = CHUNK) -> int:
    """Events folded. If another worker is folding the account, nothing: that worker
    moves the watermark, and the next run starts after it. After a fold that
    counted something, the account's running experiments are settled on the new
    counts (analytics.experiment_results), in a transaction of their own."""
    deadline = monotonic() + FOLD_BUDGET_SECONDS
    folded = 0
    while monotonic() < deadline:
        with session_scope() as session:
            fold = fold_chunk(session, account_id, utcnow(), limit=chunk, wait=False)
        if fold is None:
            break
        folded += fold.events
        if fold.caught_up:
            break
    if folded:
        with session_scope() as session:
            settle_experiments(session, account_id, utcnow())
    return folded


@app.task(name="analytics.prune_rollup_firsts", ignore_result=True)
def prune_rollup_firsts() -> int:
    """Pairs dropped: those of messages older than the rollups keep them for
    (analytics.firsts), a committed chunk at a time, within the fold's budget."""
    with session_scope() as session:
        below = first_young_message(session, utcnow())
    deadline, pruned = monotonic() + FOLD_BUDGET_SECONDS, 0
    while below is not None and monotonic() < deadline:
        with session_scope() as session:
            dropped = prune_firsts(session, below)
        pruned += dropped
        if dropped < PRUNE_CHUNK:
            break
    return pruned
