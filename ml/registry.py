"""The model registry: training runs of one kind for one account, their lifecycle,
and which model is live.

A run is ``queued`` -> ``training`` (claimed with a conditional UPDATE, under a
lease) -> ``ready`` or ``failed``. ``ready`` is written in the one transaction that
stores the artifact, its hash and the metrics, so a worker killed mid-training
leaves ``training`` behind, never a half-written ``ready``; the sweep fails it once
its lease has lapsed. The newest promoted model of a kind is live (scoring uses it);
an operator may make an earlier ready model live again (a rollback).

Takes a session and ``now``; never commits.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from ml.errors import ModelNotFoundError, ModelStateError
from ml.model import KINDS, TrainedModel, artifact_sha256, dump, load
from models import Account, Event, MlModel

# How long a claimed training may run before the sweep fails it: past the ml pool's
# hard time limit (Procfile: 3500 s), so a run that is still alive is never failed.
TRAINING_LEASE = timedelta(seconds=3600)
# A queued run no worker claimed within this (its task lost with a Redis restart)
# is handed to the pool again; claims are conditional, so a duplicate is harmless.
REDISPATCH_AFTER = timedelta(minutes=30)
MAX_ERROR = 2000


def queue_model(session: Session, account_id: int, kind: str, as_of: datetime, now: datetime) -> MlModel:
    """A new queued run; the caller commits, then enqueues its training."""
    model = MlModel(account_id=account_id, kind=kind, status="queued", as_of=as_of, params={}, metrics={},
                    promoted=False, live=False, attempts=0, created_at=now)
    session.add(model)
    session.flush()
    return model


def get_model(session: Session, account_id: int, model_id: int) -> MlModel:
    model = session.scalar(select(MlModel).where(MlModel.id == model_id, MlModel.account_id == account_id))
    if model is None:
        raise ModelNotFoundError(f"Model {model_id} not found.")
    return model


def claim_for_training(session: Session, model_id: int, now: datetime) -> MlModel | None:
    """Move a queued run to ``training`` under a lease; None if another worker got
    there first or the run is no longer queued (the UPDATE's row count decides)."""
    claimed = session.execute(
        update(MlModel).where(MlModel.id == model_id, MlModel.status == "queued")
        .values(status="training", claimed_until=now + TRAINING_LEASE, started_at=now,
                attempts=MlModel.attempts + 1)
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(MlModel, model_id, populate_existing=True)


def record_trained(session: Session, model_id: int, trained: TrainedModel, window_start: datetime | None,
                   now: datetime) -> MlModel | None:
    """Store the artifact and metrics and say ``ready``, all at once; None if the run is
    no longer training (the sweep failed it meanwhile). A promoted model becomes live
    unless a newer model of its kind already is."""
    artifact = dump(trained)
    done = session.execute(
        update(MlModel).where(MlModel.id == model_id, MlModel.status == "training")
        .values(status="ready", artifact=artifact, artifact_sha256=artifact_sha256(artifact),
                params=_json_safe(trained.params), metrics=_json_safe(trained.metrics),
                promoted=bool(trained.promoted), window_start=window_start, window_end=MlModel.as_of,
                claimed_until=None, finished_at=now)
        .execution_options(synchronize_session=False))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return None
    model = session.get(MlModel, model_id, populate_existing=True)
    assert model is not None
    if model.promoted:
        newer_live = session.scalar(select(exists().where(
            MlModel.account_id == model.account_id, MlModel.kind == model.kind, MlModel.live.is_(True),
            MlModel.id > model.id)))
        if not newer_live:
            _make_live(session, model)
    return model


def record_failure(session: Session, model_id: int, error: str, now: datetime) -> None:
    """Fail a run that is queued or training (a ready one stays ready)."""
    session.execute(
        update(MlModel).where(MlModel.id == model_id, MlModel.status.in_(("queued", "training")))
        .values(status="failed", error=error[:MAX_ERROR], claimed_until=None, finished_at=now)
        .execution_options(synchronize_session=False))


def promote(session: Session, account_id: int, model_id: int) -> MlModel:
    """Make a ready model live for its kind (the operator's rollback or roll-forward)."""
    model = get_model(session, account_id, model_id)
    if model.status != "ready":
        raise ModelStateError(f"Model {model_id} is {model.status}; only a ready model can be made live.")
    _make_live(session, model)
    return model


def _make_live(session: Session, model: MlModel) -> None:
    session.execute(
        update(MlModel).where(MlModel.account_id == model.account_id, MlModel.kind == model.kind,
                              MlModel.live.is_(True), MlModel.id != model.id)
        .values(live=False).execution_options(synchronize_session=False))
    model.live = True
    session.flush()


def live_models(session: Session, account_id: int) -> dict[str, tuple[int, TrainedModel]]:
    """Kind -> (model id, the loaded model) for each kind with a live model."""
    rows = session.execute(select(MlModel.id, MlModel.kind, MlModel.artifact).where(
        MlModel.account_id == account_id, MlModel.live.is_(True), MlModel.status == "ready"))
    return {kind: (model_id, load(artifact)) for model_id, kind, artifact in rows if artifact is not None}


def sweep_lapsed(session: Session, now: datetime) -> tuple[list[int], list[int]]:
    """(runs failed because their training lease lapsed: the worker died or was
    killed; queued runs to hand to the pool again)."""
    lapsed = list(session.scalars(
        update(MlModel).where(MlModel.status == "training", MlModel.claimed_until < now)
        .values(status="failed", claimed_until=None, finished_at=now,
                error="training stopped without finishing (worker killed, out of memory or past its time limit)")
        .returning(MlModel.id).execution_options(synchronize_session=False)))
    stale = list(session.scalars(select(MlModel.id).where(
        MlModel.status == "queued", MlModel.created_at < now - REDISPATCH_AFTER).order_by(MlModel.id)))
    return lapsed, stale


def queue_retraining(session: Session, now: datetime) -> list[int]:
    """A run of every kind as of ``now`` for every account with history, unless one of
    that kind is already queued or training (so a doubled beat run queues nothing twice)."""
    queued: list[int] = []
    for account_id in accounts_with_events(session):
        busy = set(session.scalars(select(MlModel.kind).where(
            MlModel.account_id == account_id, MlModel.status.in_(("queued", "training")))))
        queued += [queue_model(session, account_id, kind, now, now).id for kind in KINDS if kind not in busy]
    return queued


def accounts_with_events(session: Session) -> list[int]:
    """Accounts that have any history to learn from."""
    return list(session.scalars(select(Account.id).where(exists().where(Event.account_id == Account.id))
                                .order_by(Account.id)))


def _json_safe(value: Any) -> Any:
    """numpy scalars and timestamps (as metrics carry them) in JSON's types."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return _json_safe(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value
