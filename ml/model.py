"""A trained model: what it is, how it scores, and its bytes (the registry's artifact).

One class for the three kinds, so the service stores, loads and applies any of them
the same way. ``score`` takes the frame ``ml.features.features`` builds and returns
one number per subscriber; when a model was not promoted (it did not beat the best
simple rule) it scores with that rule, and ``metrics["scored_by"]`` says so.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from typing import Any, Literal

import joblib
import pandas as pd

Kind = Literal["churn", "engagement", "send_time"]
KINDS: tuple[Kind, ...] = ("churn", "engagement", "send_time")
# The column each kind's score fills in score_all's frame.
SCORE_COLUMNS: dict[str, str] = {"churn": "churn_risk", "engagement": "engagement", "send_time": "best_send_hour"}


@dataclass
class TrainedModel:
    """A model of one kind, trained on one account's history up to ``metrics['as_of']``.

    ``estimator`` is the fitted scikit-learn object, or None when a rule scores
    (``promoted`` False for churn, or a kind that needs no estimator). ``state``
    holds what scoring needs besides it (feature names, the population's hour
    profile, the rule's name and scale).
    """

    kind: Kind
    estimator: Any
    params: dict[str, Any]
    metrics: dict[str, Any]
    promoted: bool
    state: dict[str, Any] = field(default_factory=dict)

    def score(self, features: pd.DataFrame) -> pd.Series:
        """One score per row of ``features`` (indexed by subscriber_id): churn_risk or
        engagement in 0..1, best_send_hour 0..23 in the subscriber's time zone."""
        from ml import scorers  # the scoring code lives beside the training code

        return scorers.score(self, features)


def dump(model: TrainedModel) -> bytes:
    """The model's artifact (joblib). Only load artifacts this platform wrote:
    unpickling runs code."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    return buffer.getvalue()


def load(data: bytes) -> TrainedModel:
    """The model ``dump`` wrote."""
    model = joblib.load(io.BytesIO(data))
    if not isinstance(model, TrainedModel):
        raise ValueError("not a TrainedModel artifact")
    return model


def artifact_sha256(data: bytes) -> str:
    """The artifact's hash, hex: the registry's version key."""
    return hashlib.sha256(data).hexdigest()
