"""The ml pool as the Procfile runs it (prefork, concurrency 1, the ml queue only):
a training killed with its worker (kill -9) is never left "ready"; the sweep fails
it once its lease lapses, and a new run on a new worker trains to ready."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from ml import registry
from models import MlModel, db
from models.base import utcnow
from tasks.ml import enqueue_training
from tests.integration.test_ml_service import _load_simulation
from tests.support import factories
from tests.support.processes import Proc, platform_env, running, worker_argv
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


def _ml_worker(name: str, tmp_path: Path) -> Proc:
    argv = worker_argv(name, queues="ml", pool="prefork", concurrency=1, loglevel="INFO")
    proc = Proc(name, [*argv, "--max-tasks-per-child", "1"], platform_env(), tmp_path)
    proc.wait_ready()
    return proc


def _status(model_id: int) -> str:
    with db.session_scope() as s:
        return s.scalar(select(MlModel.status).where(MlModel.id == model_id))


def _queue(account_id: int, kind: str, as_of) -> int:
    with db.session_scope() as s:
        model_id = registry.queue_model(s, account_id, kind, as_of, utcnow()).id
    enqueue_training(model_id)
    return model_id


def test_a_training_killed_with_its_worker_is_failed_never_ready_and_a_new_run_trains(tmp_path: Path):
    acct = factories.account()
    end, _subscribers = _load_simulation(acct, 1500, weeks=30, seed=7)
    killed = _queue(acct, "churn", end)
    worker = _ml_worker("ml1", tmp_path)
    with running([worker]):
        wait_for(lambda: _status(killed) != "queued", 60, "the run to be claimed", interval=0.02, detail=worker.tail)
        assert _status(killed) == "training", "the run ended before the kill: give it more history"
        worker.kill()  # kill -9 of the worker and its child, mid-training
        worker.popen.wait(10)
    assert _status(killed) == "training"
    with db.session_scope() as s:
        lapsed, _stale = registry.sweep_lapsed(s, utcnow() + registry.TRAINING_LEASE)
    assert lapsed == [killed]
    with db.session_scope() as s:
        model = s.get(MlModel, killed)
        assert (model.status, model.live, model.artifact_sha256, model.attempts) == ("failed", False, None, 1)
    retried = _queue(acct, "send_time", end)
    worker = _ml_worker("ml2", tmp_path)
    with running([worker]):
        wait_for(lambda: _status(retried) in ("ready", "failed"), 180, "the new run to train", detail=worker.tail)
    assert (_status(retried), _status(killed)) == ("ready", "failed")
