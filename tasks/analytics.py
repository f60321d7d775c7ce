"""The analytics pool: rollups and the cached account analyses.

Rollups: beat's ``analytics.fold_rollups`` hands each account with new events to
``analytics.fold_account``, which folds its new events (analytics.rollups) one
committed chunk at a time. One task per account, so one account's backlog neither
holds up the others nor waits for one worker.

Account analyses (cohorts, RFM, LTV): ``analytics.compute_account_analysis``
computes one kind for one account into its cache row; beat's
``analytics.refresh_account_analyses`` hands on the stale ones
(analytics.account_analyses).

Sequence analyses (a large sequence's holdout and experiment-arm counts):
``analytics.compute_sequence_analysis`` recounts one into its cache row when a
request finds it old (analytics.sequence_cache); the same refresh hands on those
asked for and never taken up."""
from __future__ import annotations

from random import randrange
from time import monotonic

from analytics import attribution_cache
from analytics.account_analyses import (claim_analysis, compute_analysis, fail_analysis, is_fresh,
                                         request_analysis, stale_analyses)
from analytics.event_partitions import ensure_partitions
from analytics.experiment_results import settle_experiments
from analytics.firsts import CHUNK as PRUNE_CHUNK
from analytics.firsts import first_young_message, prune_firsts
from analytics.retention import BATCH as RETENTION_BATCH
from analytics.retention import Step as RetentionStep
from analytics.retention import in_turns as prune_in_turns
from analytics.retention import plan as retention_plan
from analytics.retention import run_step as run_retention_step
from analytics.rollups import CHUNK, accounts_with_new_events, fold_chunk
from analytics.sequence_cache import claim as claim_sequence_analysis
from analytics.sequence_cache import fail as fail_sequence_analysis
from analytics.sequence_cache import recount, waiting
from models.base import utcnow
from models.db import session_scope
from schedules.beat import ANALYSES_EVERY_SECONDS, FOLD_EVERY_SECONDS, RETENTION_BUDGET_SECONDS
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


@app.task(name="analytics.prune_retention", ignore_result=True)
def prune_retention(batch: int = RETENTION_BATCH, budget: float = RETENTION_BUDGET_SECONDS) -> dict[str, int]:
    """Rows pruned by kind (analytics.retention): each batch its own transaction,
    the accounts in turns from a random one, until every step is done or the
    budget is spent (the next run goes on)."""
    with session_scope() as session:
        steps = retention_plan(session, utcnow())
    deadline = monotonic() + budget

    def run_batch(step: RetentionStep) -> int:
        with session_scope() as session:
            return run_retention_step(session, step, batch)

    return prune_in_turns(steps, run_batch, lambda: monotonic() >= deadline, batch, start=randrange(1 << 30))


@app.task(name="analytics.ensure_event_partitions", ignore_result=True)
def ensure_event_partitions() -> list[str]:
    """Events' partitions created for this month and the next few (analytics.event_partitions)."""
    with session_scope() as session:
        return ensure_partitions(session, utcnow())


@app.task(name="analytics.compute_account_analysis", ignore_result=True)
def compute_account_analysis(account_id: int, kind: str) -> bool:
    """Compute one cached analysis (cohorts, rfm, ltv) of one account, unless another
    worker holds it. A failure is stored on the row (the GET shows it) rather than
    retried here: the next refresh or request asks again."""
    with session_scope() as session:
        request_analysis(session, account_id, kind, utcnow())  # the row, if nobody asked through the API
        # Computed meanwhile (with its TOGETHER kind, or by a worker handed it twice): nothing new to read.
        if is_fresh(session, account_id, kind) or not claim_analysis(session, account_id, kind, utcnow()):
            return False
    try:
        with session_scope() as session:
            compute_analysis(session, account_id, kind, utcnow())
    except Exception as error:  # noqa: BLE001 - stored for the operator, then raised for the worker's log
        with session_scope() as session:
            fail_analysis(session, account_id, kind, f"{type(error).__name__}: {error}")
        raise
    return True


@app.task(name="analytics.compute_sequence_analysis", ignore_result=True)
def compute_sequence_analysis(sequence_id: int, kind: str) -> bool:
    """Recount one sequence's cached counts (holdout, experiment_arms), unless another
    worker holds them or nobody asked. A failure is stored on the row, then raised."""
    with session_scope() as session:
        if not claim_sequence_analysis(session, sequence_id, kind, utcnow()):
            return False
    try:
        with session_scope() as session:
            return recount(session, sequence_id, kind, utcnow())
    except Exception as error:  # noqa: BLE001 - stored for the operator, then raised for the worker's log
        with session_scope() as session:
            fail_sequence_analysis(session, sequence_id, kind, f"{type(error).__name__}: {error}")
        raise


@app.task(name="analytics.compute_attribution", ignore_result=True)
def compute_attribution(answer_id: int) -> bool:
    """Recompute one cached attribution answer, unless another worker holds it or
    nobody asked. A failure is stored on the row, then raised."""
    with session_scope() as session:
        if not attribution_cache.claim(session, answer_id, utcnow()):
            return False
    try:
        with session_scope() as session:
            return attribution_cache.recompute(session, answer_id, utcnow())
    except Exception as error:  # noqa: BLE001 - stored for the operator, then raised for the worker's log
        with session_scope() as session:
            attribution_cache.fail(session, answer_id, f"{type(error).__name__}: {error}")
        raise


@app.task(name="analytics.refresh_account_analyses", ignore_result=True)
def refresh_account_analyses() -> int:
    """Hand on every cached analysis that is stale (analytics.account_analyses), and
    every sequence analysis or attribution answer asked for but not taken up
    (analytics.sequence_cache, analytics.attribution_cache); forget attribution
    answers nobody asks for any more."""
    with session_scope() as session:
        stale = stale_analyses(session, utcnow())
        asked = waiting(session, utcnow())
        attributions = attribution_cache.waiting(session, utcnow())
        attribution_cache.forget(session, utcnow())
    for account_id, kind in stale:
        compute_account_analysis.apply_async((account_id, kind), expires=ANALYSES_EVERY_SECONDS)
    for sequence_id, kind in asked:
        compute_sequence_analysis.apply_async((sequence_id, kind), expires=ANALYSES_EVERY_SECONDS)
    for answer_id in attributions:
        compute_attribution.apply_async((answer_id,), expires=ANALYSES_EVERY_SECONDS)
    return len(stale) + len(asked) + len(attributions)
