"""Churn training on small histories: a model that beats the rules is promoted; one
that cannot (the rule is already perfect) is not, and the rule scores instead;
artifacts round-trip."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ml import api
from ml.history import make_history
from ml.simulator import simulate
from ml.training import NotEnoughHistoryError

AS_OF = datetime(2026, 6, 1, tzinfo=timezone.utc)


def weekly_openers(n: int = 200, weeks: int = 40) -> api.History:
    """Each subscriber opens on the fourth day of every week until a week of their own,
    then never again: days since the last open tells churners apart perfectly (the
    stop weeks are odd, the cuts fall every four weeks, so none stops at a cut)."""
    rng = np.random.default_rng(1)
    stop = rng.integers(0, (weeks + 12) // 2, n) * 2 + 1
    rows = [(sid + 1, name, AS_OF - timedelta(weeks=weeks - w) + timedelta(days=3), None)
            for sid in range(n) for w in range(min(stop[sid], weeks)) for name in ("sent", "opened")]
    events = pd.DataFrame(rows, columns=["subscriber_id", "name", "occurred_at", "value"])
    subscribers = pd.DataFrame({"subscriber_id": np.arange(1, n + 1), "created_at": AS_OF - timedelta(weeks=weeks + 1)})
    return make_history(1, AS_OF, events, subscribers)


def test_a_model_that_cannot_beat_a_perfect_rule_is_not_promoted_and_the_rule_scores():
    history = weekly_openers()
    model = api.train_churn(history, AS_OF)
    assert model.metrics["rule_auc"]["days_since_last_open"] == 1.0
    assert not model.promoted and model.estimator is None
    assert model.metrics["scored_by"] == "rule:days_since_last_open"
    frame = api.features(history, AS_OF)
    risk = model.score(frame)
    quiet = frame["days_since_open"].isna() | (frame["days_since_open"] > 7)
    assert risk[quiet].min() > risk[~quiet].max()


def test_on_a_simulated_account_the_model_beats_every_rule_and_is_promoted():
    sim = simulate(3_000, seed=5)
    model = api.train_churn(sim.history, sim.end)
    assert model.promoted and model.estimator is not None and model.metrics["scored_by"] == "model"
    assert model.metrics["roc_auc"] > max(model.metrics["rule_auc"].values())
    table = model.metrics["calibration"]
    assert sum(row["count"] for row in table) == model.metrics["evaluated_subscribers"]
    scores = api.score_all({"churn": model}, sim.history, sim.end).set_index("subscriber_id")
    live = sim.truth[sim.truth["live"]]
    assert roc_auc_score(live["churned"], scores.loc[live.index, "churn_risk"]) > 0.75
    assert scores["churn_risk"].between(0, 1).all() and scores["best_send_hour"].between(0, 23).all()


def test_the_artifact_round_trips_to_the_same_scores_and_hash():
    history = weekly_openers(80)
    model = api.train_churn(history, AS_OF)
    data = api.dump(model)
    again = api.load(data)
    frame = api.features(history, AS_OF)
    pd.testing.assert_series_equal(model.score(frame), again.score(frame))
    assert api.artifact_sha256(api.dump(model)) == api.artifact_sha256(data)  # the hash names these bytes


def test_a_history_shorter_than_two_horizons_is_refused():
    history = weekly_openers(50, weeks=10)
    with pytest.raises(NotEnoughHistoryError):
        api.train_churn(history, AS_OF)


def test_a_history_of_a_horizon_and_some_weeks_trains_on_overlapping_cuts_and_says_so():
    model = api.train_churn(weekly_openers(200, weeks=14), AS_OF)
    assert model.metrics["split"] == "overlapping"
    assert model.metrics["training_cuts"] == [(AS_OF - timedelta(weeks=8 + k)).isoformat() for k in (1, 2, 3)]
    assert api.train_churn(weekly_openers(), AS_OF).metrics["split"] == "strict"


def test_calibration_keeps_the_base_models_ranking_and_moves_no_probability_by_more_than_a_millionth():
    """Isotonic calibration is a step function: without the tie-break every raw score
    in one step would get the same probability, and the ranking (AUC) would lose their order."""
    from sklearn.linear_model import LogisticRegression

    from ml.churn import TIE_BREAK, CalibratedModel

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=4000)})
    labels = (rng.random(4000) < 1 / (1 + np.exp(-2 * frame["x"].to_numpy()))).astype(int)
    model = CalibratedModel(LogisticRegression().fit(frame, labels), ["x"]).fit_calibration(frame, labels)
    raw = model.raw(frame)
    steps = model.isotonic.predict(raw)
    assert len(np.unique(steps)) < len(raw) / 10, "the calibration alone ties most scores"
    predicted = model.predict(frame)
    assert np.abs(predicted - steps).max() <= TIE_BREAK
    assert len(np.unique(predicted)) == len(np.unique(raw))
    assert (np.argsort(predicted, kind="stable") == np.argsort(raw, kind="stable")).all()
    assert roc_auc_score(labels, predicted) == pytest.approx(roc_auc_score(labels, raw), abs=1e-12)
