"""Applying trained models (or, without one, the simple rules) to feature rows."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from ml.churn import _fill_gaps, rule_values
from ml.engagement import rule_engagement
from ml.features import hour_profile
from ml.history import History
from ml.model import SCORE_COLUMNS, TrainedModel
from ml.send_time import best_hours, population_profile
from ml.training import features_at, subscribed


def score(model: TrainedModel, frame: pd.DataFrame) -> pd.Series:
    """See TrainedModel.score."""
    reachable = subscribed(frame)
    if model.kind == "churn":
        if model.promoted:
            values = model.estimator.predict(frame)
        else:
            values = model.state["rule_calibrator"].predict(rule_values(frame)[model.state["rule"]])
        values = np.where(reachable, np.clip(values, 0, 1), 1.0)  # gone is churned, by definition
    elif model.kind == "engagement":
        if model.promoted:
            values = model.estimator.predict(_fill_gaps(frame[model.state["columns"]]))
        else:
            values = rule_engagement(frame)
        values = np.where(reachable, np.clip(values, 0, 1), 0.0)
    else:
        if model.state.get("fixed_hour") is not None:
            values = np.full(len(frame), model.state["fixed_hour"])
        else:
            values = best_hours(hour_profile(frame), model.state["prior"], model.state["alpha"], model.state["width"])
    name = SCORE_COLUMNS[model.kind]
    return pd.Series(values, index=frame.index, name=name).astype("int64" if name == "best_send_hour" else "float64")


def rule_model(kind: str, frame: pd.DataFrame) -> TrainedModel:
    """What scores engagement or send time without a trained model: engagement = share
    of the last 4 weeks with an open or click; best hour from the subscriber's opens and
    the account's profile (alpha 4, 1 h width)."""
    if kind == "engagement":
        return TrainedModel("engagement", None, {}, {"scored_by": "rule:no_model"}, False, {})
    prior = population_profile(hour_profile(frame), 1.0)
    return TrainedModel("send_time", None, {}, {"scored_by": "rule:no_model"}, False,
                        {"prior": prior, "alpha": 4.0, "width": 1.0, "fixed_hour": None})


def score_all(models: dict[str, TrainedModel], history: History, as_of: datetime) -> pd.DataFrame:
    """See ml.api.score_all. Churn without a model: the share of the last 12 weeks
    without an open or click."""
    frame = features_at(history, as_of)
    out = pd.DataFrame(index=frame.index)
    for kind, column in SCORE_COLUMNS.items():
        if kind in models:
            out[column] = score(models[kind], frame)
        elif kind == "churn":
            out[column] = _churn_without_model(frame)
        else:
            out[column] = score(rule_model(kind, frame), frame)
    return out.reset_index()


def _churn_without_model(frame: pd.DataFrame) -> pd.Series:
    values = 1.0 - frame["active_weeks_12"].to_numpy() / 12.0
    return pd.Series(np.where(subscribed(frame), values, 1.0), index=frame.index, name="churn_risk")
