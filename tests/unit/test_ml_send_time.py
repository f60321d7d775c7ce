"""Learned send times: a subscriber's own hours win when they have many opens, the
account's profile when they have few; hits are counted around midnight too."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from ml.send_time import best_hours, population_profile, train_send_time, within_one_hour
from ml.history import make_history


def counts(hour_opens: dict[int, int]) -> np.ndarray:
    row = np.zeros(24)
    for hour, n in hour_opens.items():
        row[hour] = n
    return row


def test_few_opens_are_shrunk_toward_the_accounts_hour_and_many_are_not():
    population = np.array([counts({20: 10})] * 50)  # the account opens at 20h
    prior = population_profile(population, width=1.0)
    carol_once, dave_often = counts({8: 1}), counts({8: 30})
    hours = best_hours(np.array([carol_once, dave_often]), prior, alpha=4.0, width=1.0)
    assert hours.tolist() == [20, 8]
    assert best_hours(np.array([carol_once]), prior, alpha=0.5, width=1.0).tolist() == [8]  # a weak prior lets one open win


def test_a_subscriber_without_opens_gets_the_accounts_peak():
    prior = population_profile(np.array([counts({7: 3}), counts({7: 2, 21: 1})]), width=1.0)
    assert best_hours(np.zeros((1, 24)), prior, alpha=1.0, width=1.0).tolist() == [7]


def test_within_one_hour_wraps_around_midnight():
    later = np.array([counts({0: 2, 22: 1, 20: 1})])
    assert within_one_hour(np.array([23]), later) == 0.75


def test_training_learns_each_subscribers_hour_and_beats_the_fixed_rule():
    rng = np.random.default_rng(3)
    as_of = datetime(2026, 3, 1, tzinfo=timezone.utc)
    rows, truth = [], {}
    for sid in range(1, 61):
        hour = int(rng.choice([7, 13, 19, 22]))
        truth[sid] = hour
        for day in range(1, 120, 3):
            at = as_of - timedelta(days=day) + timedelta(hours=hour - 24, minutes=int(rng.integers(0, 60)))
            rows.append((sid, "opened", at, None))
    history = make_history(1, as_of, pd.DataFrame(rows, columns=["subscriber_id", "name", "occurred_at", "value"]),
                           pd.DataFrame({"subscriber_id": list(truth), "timezone": None,
                                         "created_at": as_of - timedelta(days=200)}))
    model = train_send_time(history, as_of)
    assert model.promoted and model.metrics["later_opens_within_1h"] == 1.0
    assert model.metrics["rule_9_12_within_1h"] == 0.0  # nobody here opens between 9 and 11
    from ml.features import features

    scored = model.score(features(history, as_of))
    assert scored.to_dict() == truth
