"""Churn risk: P(no open or click in the next ``horizon``, or an unsubscribe).

Two candidates, a gradient-boosted tree model and a logistic regression on
log-scaled features, are fitted on older cuts, calibrated with isotonic regression
on the newest training cut (a held-out time slice), and compared on the evaluation
cut (``as_of - horizon``, labels up to ``as_of``) with each other and with the
simple rules. The better candidate is then refitted one cut later (base on every
training cut, isotonic on the evaluation cut) and scores as of ``as_of``. It is
promoted only if its evaluation AUC beats the best rule's; otherwise the best rule,
mapped to a probability by isotonic regression on the evaluation cut, scores, and
``metrics['scored_by']`` names it.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ml.history import History
from ml.model import TrainedModel
from ml.training import (MAX_ROWS, NotEnoughHistoryError, churn_labels, in_chunks, iso, model_columns, one_thread,
                         rows_at, sample, split, training_cuts)

NEVER = 10_000.0  # days since an open that never happened: riskier than any real gap
# Isotonic calibration is a step function: every raw score inside one step gets the
# same probability, and those ties throw away part of the ranking (the AUC) the
# base model had. This much of the raw score, mixed in, orders each step by it
# while moving no probability by more than a millionth.
TIE_BREAK = 1e-6


def rule_values(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The simple rules, each a risk (higher = more likely to churn)."""
    return {"days_since_last_open": frame["days_since_open"].fillna(NEVER).to_numpy(),
            "opens_last_4_weeks": -frame["opens_28d"].to_numpy()}


def log_scaled(x: Any) -> np.ndarray:
    """Logistic regression's view of the features: signed log1p, gaps never seen as
    NEVER, rates without sends as 0 (their counts say so)."""
    values = np.nan_to_num(np.asarray(x, dtype="float64"), nan=0.0)
    return np.sign(values) * np.log1p(np.abs(values))


def _candidates() -> dict[str, Any]:
    return {"gradient_boosting": HistGradientBoostingClassifier(max_iter=150, learning_rate=0.08, max_leaf_nodes=31,
                                                                l2_regularization=1.0, min_samples_leaf=40,
                                                                random_state=0),
            "logistic_regression": make_pipeline(FunctionTransformer(log_scaled), StandardScaler(),
                                                 LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=100))}


def _fill_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    gaps = [c for c in frame.columns if c.startswith("days_since_")]
    return frame.assign(**{c: frame[c].fillna(NEVER) for c in gaps})


class CalibratedModel:
    """A fitted classifier and the isotonic map from its score to a probability."""

    def __init__(self, base: Any, columns: list[str]) -> None:
        self.base, self.columns, self.isotonic = base, columns, IsotonicRegression(out_of_bounds="clip")

    def raw(self, frame: pd.DataFrame) -> np.ndarray:
        return self.base.predict_proba(_fill_gaps(frame[self.columns]))[:, 1]

    def fit_calibration(self, frame: pd.DataFrame, labels: np.ndarray) -> CalibratedModel:
        self.isotonic.fit(self.raw(frame), labels)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        raw = in_chunks(self.raw, frame)
        return np.clip((1 - TIE_BREAK) * self.isotonic.predict(raw) + TIE_BREAK * raw, 0.0, 1.0)


def _labelled(history: History, cuts: list[datetime], horizon: timedelta) -> list[tuple[pd.DataFrame, np.ndarray]]:
    out = []
    for cut in cuts:
        frame = rows_at(history, cut)
        out.append((frame, churn_labels(history, cut, horizon, frame.index)))
    return out


def _stack(parts: list[tuple[pd.DataFrame, np.ndarray]]) -> tuple[pd.DataFrame, np.ndarray]:
    return sample(pd.concat([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def _fit(name: str, parts: list[tuple[pd.DataFrame, np.ndarray]], calibrate_on: tuple[pd.DataFrame, np.ndarray],
         columns: list[str]) -> CalibratedModel:
    frame, labels = _stack(parts)
    _both_classes(labels, "training")
    with one_thread():
        base = _candidates()[name].fit(_fill_gaps(frame[columns]), labels)
    return CalibratedModel(base, columns).fit_calibration(*calibrate_on)


def _both_classes(labels: np.ndarray, what: str) -> None:
    if len(labels) < 20 or labels.min() == labels.max():
        raise NotEnoughHistoryError(f"the {what} cut has {len(labels)} subscribers and one label only"
                                    if len(labels) >= 20 else f"the {what} cut has fewer than 20 subscribers")


def calibration_table(probability: np.ndarray, labels: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Per tenth of predicted probability: rows, mean prediction, observed rate."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, bins - 1)
    return [{"bin_low": float(edges[b]), "bin_high": float(edges[b + 1]), "count": int((which == b).sum()),
             "mean_predicted": float(probability[which == b].mean()), "observed_rate": float(labels[which == b].mean())}
            for b in range(bins) if (which == b).any()]


def train_churn(history: History, as_of: datetime, horizon: timedelta = timedelta(weeks=8)) -> TrainedModel:
    """See ml.api.train_churn."""
    as_of = as_of.astimezone(timezone.utc)
    cuts = training_cuts(history, as_of, horizon)
    if not cuts:
        raise NotEnoughHistoryError(f"churn needs {horizon.days + 21} days of history at least")
    evaluation = _labelled(history, [as_of - horizon], horizon)[0]
    _both_classes(evaluation[1], "evaluation")
    training = _labelled(history, cuts, horizon)
    columns = model_columns(evaluation[0])
    # Calibrated on the newest training cut; fitted on the older ones (or, with one
    # cut only, on that cut too: the calibration is then in-sample).
    older = training[1:] or training
    auc: dict[str, float] = {}
    predicted: dict[str, np.ndarray] = {}
    for name in _candidates():
        predicted[name] = _fit(name, older, training[0], columns).predict(evaluation[0])
        auc[name] = float(roc_auc_score(evaluation[1], predicted[name]))
    chosen = max(auc, key=lambda k: auc[k])
    probability = predicted[chosen]
    rules = {name: float(roc_auc_score(evaluation[1], values)) for name, values in rule_values(evaluation[0]).items()}
    best_rule = max(rules, key=lambda k: rules[k])
    promoted = auc[chosen] > rules[best_rule]
    labels = evaluation[1]
    metrics: dict[str, Any] = {
        "roc_auc": auc[chosen], "pr_auc": float(average_precision_score(labels, probability)),
        "brier": float(brier_score_loss(labels, probability)), "calibration": calibration_table(probability, labels),
        "rule_auc": rules, "best_rule": best_rule, "candidates_auc": auc, "estimator": chosen,
        "promoted": promoted, "scored_by": "model" if promoted else f"rule:{best_rule}",
        "base_rate": float(labels.mean()), "evaluated_subscribers": int(len(labels)),
        "training_rows": int(min(sum(len(p[1]) for p in training), MAX_ROWS)),
        "as_of": iso(as_of), "horizon_days": horizon.days, "evaluation_cut": iso(as_of - horizon),
        "training_cuts": [iso(c) for c in cuts], "split": split(cuts, as_of, horizon),
        "definition": f"no open or click in the {horizon.days} days after the cut, or an unsubscribe or complaint",
    }
    state: dict[str, Any] = {"rule": best_rule}
    estimator = None
    if promoted:
        estimator = _fit(chosen, training, evaluation, columns)
    else:
        state["rule_calibrator"] = IsotonicRegression(out_of_bounds="clip").fit(rule_values(evaluation[0])[best_rule],
                                                                                labels)
    params = {"horizon_days": horizon.days, "estimator": chosen, "step_days": 28, "cuts": len(cuts)}
    return TrainedModel("churn", estimator, params, metrics, promoted, state)
