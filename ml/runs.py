"""Training one registry run of one kind from an account's history (no transaction held:
the caller reads the history, closes its session, then trains)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pandas as pd

from ml import api
from ml.model import TrainedModel

TRAINERS: dict[str, Callable[[api.History, datetime], TrainedModel]] = {
    "churn": api.train_churn,
    "engagement": api.train_engagement,
    "send_time": api.train_send_time,
}


def fit(kind: str, history: api.History, as_of: datetime) -> TrainedModel:
    return TRAINERS[kind](history, as_of)


def window_start(history: api.History) -> datetime | None:
    """The earliest event the run learned from (its training window ends at ``as_of``)."""
    events = history.events
    if events is None or len(events) == 0:
        return None
    first = events["occurred_at"].min()
    return None if pd.isna(first) else pd.Timestamp(first).to_pydatetime()
