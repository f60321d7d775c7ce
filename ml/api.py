"""The ml domain's interface: everything the service (tasks, web, registry) calls.

Pure domain: takes a session and times, never commits, no Flask or Celery.

    history = load_history(session, account_id, until=as_of)
    models = {"churn": train_churn(history, as_of), "engagement": train_engagement(history, as_of),
              "send_time": train_send_time(history, as_of)}
    scores = score_all(models, history, as_of)  # subscriber_id, churn_risk, engagement, best_send_hour
    artifact = dump(models["churn"]); same = load(artifact)

Times are aware UTC datetimes. Every function reads only events up to ``as_of``.
A history too short to train on raises ``NotEnoughHistoryError`` (a ValueError);
``score_all`` scores a kind without a model by its rule.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy.orm import Session

from ml.history import History
from ml.model import KINDS, SCORE_COLUMNS, Kind, TrainedModel, artifact_sha256, dump, load
from ml.training import NotEnoughHistoryError

__all__ = ["KINDS", "SCORE_COLUMNS", "History", "Kind", "TrainedModel", "artifact_sha256", "dump", "features",
           "load", "load_history", "NotEnoughHistoryError",
           "score_all", "train_churn", "train_engagement", "train_send_time"]


def load_history(session: Session, account_id: int, until: datetime) -> History:
    """The account's events up to ``until`` (inclusive) and its subscribers, as frames.

    ``events``: subscriber_id int64, name category, occurred_at datetime64[ns, UTC],
    value float32 (NaN when none). ``subscribers``: indexed by subscriber_id with
    timezone (category, None -> UTC), created_at, status. Events without a
    subscriber are left out.
    """
    from ml.history import load_history as _load

    return _load(session, account_id, until)


def features(history: History, as_of: datetime) -> pd.DataFrame:
    """One row per subscriber existing at ``as_of`` (indexed by subscriber_id), from
    events at or before ``as_of`` only: recency, frequency and rates of opens and
    clicks over several windows, trend, tenure, bounces, complaints, unsubscribed,
    conversions and revenue, and the open-hour profile (``open_h00``..``open_h23``)
    in the subscriber's time zone."""
    from ml.features import features as _features

    return _features(history, as_of)


def train_churn(history: History, as_of: datetime, horizon: timedelta = timedelta(weeks=8)) -> TrainedModel:
    """Churn risk: P(no open or click in the next ``horizon``, or unsubscribed).
    Time-based split; calibrated; compared with the simple rules; not promoted when
    it does not beat the best rule (then ``score`` uses that rule)."""
    from ml.churn import train_churn as _train

    return _train(history, as_of, horizon)


def train_engagement(history: History, as_of: datetime, horizon: timedelta = timedelta(weeks=4)) -> TrainedModel:
    """Engagement 0..1: the expected share of the next ``horizon``'s weeks with an
    open or click, from recent activity shrunk toward the account's population."""
    from ml.engagement import train_engagement as _train

    return _train(history, as_of, horizon)


def train_send_time(history: History, as_of: datetime) -> TrainedModel:
    """Best send hour 0..23 (local): the mode of each subscriber's open hours, shrunk
    toward the account's hour profile when they have few opens; evaluated against
    the fixed 9-12h rule on held-out later opens."""
    from ml.send_time import train_send_time as _train

    return _train(history, as_of)


def score_all(models: dict[str, TrainedModel], history: History, as_of: datetime) -> pd.DataFrame:
    """Columns subscriber_id, churn_risk, engagement, best_send_hour for every
    subscriber in ``history``; a kind missing from ``models`` is scored by its rule."""
    from ml.scorers import score_all as _score_all

    return _score_all(models, history, as_of)
