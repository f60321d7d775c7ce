"""Engagement 0..1: the expected share of the next ``horizon``'s weeks in which the
subscriber opens or clicks.

A gradient-boosted regression on the same features and time-based cuts as churn,
compared on the evaluation cut with the rule "share of the last four weeks with an
open or click"; promoted when its squared error is lower, else that rule scores.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.ensemble import HistGradientBoostingRegressor

from ml.churn import _fill_gaps
from ml.history import History
from ml.model import TrainedModel
from ml.training import (NotEnoughHistoryError, iso, model_columns, one_thread, rows_at, sample, split, training_cuts,
                         weeks_active_between)


def rule_engagement(frame: pd.DataFrame) -> np.ndarray:
    return frame["active_weeks_4"].to_numpy() / 4.0


def _labelled(history: History, cut: datetime, weeks: int) -> tuple[pd.DataFrame, np.ndarray]:
    frame = rows_at(history, cut)
    return frame, weeks_active_between(history, cut, weeks, frame.index) / weeks


def train_engagement(history: History, as_of: datetime, horizon: timedelta = timedelta(weeks=4)) -> TrainedModel:
    """See ml.api.train_engagement."""
    as_of = as_of.astimezone(timezone.utc)
    weeks = max(horizon.days // 7, 1)
    cuts = training_cuts(history, as_of, horizon)
    if not cuts:
        raise NotEnoughHistoryError(f"engagement needs {horizon.days + 21} days of history at least")
    evaluation = _labelled(history, as_of - horizon, weeks)
    training = [_labelled(history, cut, weeks) for cut in cuts]
    if len(evaluation[1]) < 20:
        raise NotEnoughHistoryError("the evaluation cut has fewer than 20 subscribers")
    columns = model_columns(evaluation[0])

    def fit(parts: list[tuple[pd.DataFrame, np.ndarray]]) -> HistGradientBoostingRegressor:
        frame, target = sample(pd.concat([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        with one_thread():
            return HistGradientBoostingRegressor(max_iter=150, learning_rate=0.08, l2_regularization=1.0,
                                                 min_samples_leaf=40,
                                                 random_state=0).fit(_fill_gaps(frame[columns]), target)

    predicted = np.clip(fit(training).predict(_fill_gaps(evaluation[0][columns])), 0, 1)
    rule = rule_engagement(evaluation[0])
    target = evaluation[1]
    mse, rule_mse = float(np.mean((predicted - target) ** 2)), float(np.mean((rule - target) ** 2))
    promoted = mse < rule_mse
    metrics: dict[str, Any] = {
        "mse": mse, "rule_mse": rule_mse, "spearman": float(spearmanr(predicted, target).statistic),
        "rule_spearman": float(spearmanr(rule, target).statistic), "promoted": promoted,
        "scored_by": "model" if promoted else "rule:active_share_last_4_weeks",
        "evaluated_subscribers": int(len(target)), "as_of": iso(as_of), "horizon_days": horizon.days,
        "evaluation_cut": iso(as_of - horizon), "training_cuts": [iso(c) for c in cuts],
        "split": split(cuts, as_of, horizon),
        "definition": f"expected share of the {weeks} weeks after the cut with an open or click",
    }
    estimator = fit(training + [evaluation]) if promoted else None
    params = {"horizon_days": horizon.days, "estimator": "gradient_boosting", "cuts": len(cuts)}
    return TrainedModel("engagement", estimator, params, metrics, promoted, {"columns": columns})
