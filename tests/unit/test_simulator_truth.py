"""The simulator's true churn probability is the chance of what it plays out: the
exact chance along an engagement path (ml.simulator.churn_chance) agrees with the
share of futures played from the same states that churn (churned_futures)."""
from __future__ import annotations

import numpy as np

from ml.simulator import churn_chance, churned_futures, first_state


def test_the_exact_chance_agrees_with_the_futures_played_from_the_same_states():
    rng = np.random.default_rng(11)
    mean, z, drift = first_state(rng, 4000)
    shape = (4000, 50)
    states = [np.broadcast_to(a[:, None], shape) for a in (z, mean, drift)]
    for sends in (1, 2):
        chance = churn_chance(rng, *states, sends, 8).mean(axis=1)
        played = churned_futures(rng, *states, sends, 8).mean(axis=1)
        # 200,000 futures in all: their share is known to about 0.001.
        assert abs(chance.mean() - played.mean()) < 0.006
        # Subscriber by subscriber, 50 futures each: the two agree up to their noise.
        assert np.corrcoef(chance, played)[0, 1] > 0.9
        engaged, lapsed = z > 1.5, z < -2.5
        assert chance[engaged].mean() + 0.2 < chance[lapsed].mean()


def test_two_sends_a_week_leave_less_chance_of_a_silent_horizon():
    rng = np.random.default_rng(3)
    mean, z, drift = first_state(rng, 2000)
    once = churn_chance(np.random.default_rng(5), z, mean, drift, 1, 8)
    twice = churn_chance(np.random.default_rng(5), z, mean, drift, 2, 8)
    assert (twice <= once + 1e-12).all() and twice.mean() < once.mean()
