"""Always-valid comparison of two send rates: the statistics behind A/B decisions.

An experiment is looked at after every rollup, so a test that is only valid at one
planned horizon would, checked fifty times, call a winner between two identical
emails about a third of the time (bench/experiments.py measures it). We use the
mixture sequential probability ratio test (mSPRT) of Johari, Koomen, Pekelis and
Walsh ("Always valid inference", the method of Optimizely's Stats Engine): the
likelihood ratio of "the rates differ by theta" against "they are equal", averaged
over a normal prior theta ~ N(0, tau^2), is a martingale under the null, so by
Ville's inequality it exceeds 1/alpha at *any* look with probability at most alpha.
Inverting it gives a confidence sequence: intervals that hold at every look at once.

Why not GrowthBook's Bayesian rule (ship when the chance to win is high and the
expected loss of shipping the leader is under a threshold)? It bounds the *cost*
of a wrong pick, not how often one is picked: between two identical emails the
loss of either is nil, so it soon "decides" (in bench/experiments.py about half
of A/A experiments get a winner). The guarantee asked for here is the
false-winner rate, which is what an always-valid test controls.

Send outcomes are Bernoulli; with at least ``min_per_variant`` sends per variant
the difference of the two rates is close to normal, with variance
``V = q1(1-q1)/n1 + q2(1-q2)/n2`` (rates shrunk by one success and one failure so
that V is never 0). The prior's scale is set in units of the pair's per-send
standard deviation, tuned so the interval is narrowest around
``DESIGN_SENDS_PER_VARIANT`` sends per variant; any fixed choice keeps the
guarantee, the tuning only moves where the test has most power.

Everything here takes numpy arrays (broadcasting), so the simulation that proves
the guarantee runs the very functions the platform uses, over a thousand
experiments at once.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar

# Where the mixture is tuned to be sharpest: a step that sends to a few thousand
# subscribers per variant. Smaller lists still get valid (wider) intervals.
DESIGN_SENDS_PER_VARIANT = 2_000


@lru_cache(maxsize=64)
def _best_ratio(alpha: float) -> float:
    """tau^2 / V at which the interval's half-width is smallest, for this alpha.

    The squared half-width is ``V * (1+r)/r * (2 log(1/alpha) + log(1+r))`` with
    ``r = tau^2 / V``; minimised over log r (a smooth, one-dimensional problem)."""
    level = np.log(1 / alpha)

    def width(log_r: float) -> float:
        r = np.exp(log_r)
        return float((1 + r) / r * (2 * level + np.log1p(r)))

    return float(np.exp(minimize_scalar(width, bounds=(-10.0, 15.0), method="bounded").x))


def _shrunk(successes: NDArray[np.float64], sent: NDArray[np.float64]) -> NDArray[np.float64]:
    return (successes + 1) / (sent + 2)


def _terms(sent_a: ArrayLike, successes_a: ArrayLike, sent_b: ArrayLike, successes_b: ArrayLike,
           alpha: float) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(observed difference a - b, its variance V, the mixture variance tau^2)."""
    n_a, x_a = np.asarray(sent_a, dtype=float), np.asarray(successes_a, dtype=float)
    n_b, x_b = np.asarray(sent_b, dtype=float), np.asarray(successes_b, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.where((n_a > 0) & (n_b > 0), x_a / np.maximum(n_a, 1) - x_b / np.maximum(n_b, 1), 0.0)
    q_a, q_b = _shrunk(x_a, n_a), _shrunk(x_b, n_b)
    variance = q_a * (1 - q_a) / np.maximum(n_a, 1) + q_b * (1 - q_b) / np.maximum(n_b, 1)
    pooled = _shrunk(x_a + x_b, n_a + n_b)
    tau2 = pooled * (1 - pooled) * 2 * _best_ratio(alpha) / DESIGN_SENDS_PER_VARIANT
    return diff, variance, tau2


def half_width(sent_a: ArrayLike, successes_a: ArrayLike, sent_b: ArrayLike, successes_b: ArrayLike,
               alpha: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(rate_a - rate_b, half-width of its always-valid 1 - alpha confidence sequence).

    The interval ``diff ± half_width`` covers the true difference at every look
    simultaneously with probability at least 1 - alpha."""
    diff, v, tau2 = _terms(sent_a, successes_a, sent_b, successes_b, alpha)
    width2 = 2 * v * (v + tau2) / tau2 * (np.log(1 / alpha) + 0.5 * np.log((v + tau2) / v))
    return diff, np.sqrt(width2)


def p_value(sent_a: ArrayLike, successes_a: ArrayLike, sent_b: ArrayLike, successes_b: ArrayLike,
            alpha: float) -> NDArray[np.float64]:
    """min(1, 1 / mixture likelihood ratio): below alpha exactly when the interval
    excludes 0. It is always valid as a running minimum over looks; from one look's
    counts it is that look's value (the caller keeps the first decision)."""
    diff, v, tau2 = _terms(sent_a, successes_a, sent_b, successes_b, alpha)
    log_ratio = 0.5 * np.log(v / (v + tau2)) + tau2 * diff ** 2 / (2 * v * (v + tau2))
    return np.minimum(1.0, np.exp(-log_ratio))
