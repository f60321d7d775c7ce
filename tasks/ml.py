"""The ml pool: training runs and scoring, each in a prefork child of its own
(Procfile: concurrency 1, long time limits, one task per child), so a training
holds no other pool's worker. Beat's dispatchers (weekly retraining, daily scoring,
the sweep) only read and enqueue, and run on the default queue.

Training reads the history in one transaction, trains outside any, and writes the
result in a third: ``ready`` arrives with the artifact and the account's scores as
of the run's ``as_of``, or not at all.
"""
from __future__ import annotations

import logging
from datetime import datetime

from celery.exceptions import SoftTimeLimitExceeded

from ml import api
from ml.registry import (accounts_with_events, claim_for_training, queue_retraining, record_failure, record_trained,
                         sweep_lapsed)
from ml.scoring import score_account
from ml.runs import fit, window_start
from models.base import utcnow
from models.db import session_scope
from tasks.app import app

log = logging.getLogger(__name__)

# Under the broker's visibility timeout (3600 s) like every limit; the Procfile's
# worker_ml passes the same numbers.
TRAIN_SOFT_LIMIT = 3300
TRAIN_HARD_LIMIT = 3500


def enqueue_training(model_id: int) -> None:
    """After the run's row is committed."""
    train.apply_async(args=[model_id])


@app.task(name="ml.train", ignore_result=True, soft_time_limit=TRAIN_SOFT_LIMIT, time_limit=TRAIN_HARD_LIMIT)
def train(model_id: int) -> str | None:
    """Train one queued run; its status afterwards, or None if it was not queued."""
    with session_scope() as session:
        model = claim_for_training(session, model_id, utcnow())
        if model is None:
            return None
        account_id, kind, as_of = model.account_id, model.kind, model.as_of
    try:
        with session_scope() as session:
            history = api.load_history(session, account_id, until=as_of)
        trained = fit(kind, history, as_of)
        with session_scope() as session:
            ready = record_trained(session, model_id, trained, window_start(history), utcnow())
            if ready is not None:
                # In the same transaction: a client that sees "ready" sees the scores too.
                score_account(session, account_id, as_of, history)
    except SoftTimeLimitExceeded:
        _failed(model_id, f"training took longer than its {TRAIN_SOFT_LIMIT} s limit")
        return "failed"
    except Exception as exc:  # noqa: BLE001 - the run fails with the reason; the pool goes on
        log.exception("ml model %s failed to train", model_id)
        _failed(model_id, f"{type(exc).__name__}: {exc}")
        return "failed"
    return "failed" if ready is None else "ready"  # None: the sweep failed it meanwhile


def _failed(model_id: int, error: str) -> None:
    with session_scope() as session:
        record_failure(session, model_id, error, utcnow())


@app.task(name="ml.score", ignore_result=True, soft_time_limit=TRAIN_SOFT_LIMIT, time_limit=TRAIN_HARD_LIMIT)
def score(account_id: int, as_of: str | None = None) -> int:
    """Score the account's subscribers as of ``as_of`` (ISO), by default now."""
    moment = datetime.fromisoformat(as_of) if as_of else utcnow()
    with session_scope() as session:
        return score_account(session, account_id, moment)


@app.task(name="ml.retrain_all", ignore_result=True)
def retrain_all() -> int:
    """Weekly: a run of every kind for every account with history, as of now, unless
    one of that kind is already queued or training (safe to run twice)."""
    with session_scope() as session:
        queued = queue_retraining(session, utcnow())
    for model_id in queued:
        enqueue_training(model_id)
    return len(queued)


@app.task(name="ml.score_all", ignore_result=True)
def score_all_accounts() -> int:
    """Daily: score every account with history, as of now."""
    with session_scope() as session:
        accounts = accounts_with_events(session)
    for account_id in accounts:
        score.apply_async(args=[account_id])
    return len(accounts)


@app.task(name="ml.sweep", ignore_result=True)
def sweep() -> int:
    """Fail runs whose worker died mid-training; hand lost queued runs to the pool again."""
    with session_scope() as session:
        lapsed, stale = sweep_lapsed(session, utcnow())
    for model_id in lapsed:
        log.warning("ml model %s failed: its training lease lapsed", model_id)
    for model_id in stale:
        enqueue_training(model_id)
    return len(lapsed)
