"""The best churn ranking that a history's outcomes allow, on the simulator: the ceiling
of the model's ratio to the oracle in bench.ml_quality.

The oracle ranks live subscribers by their true churn probability, computed from the
hidden engagement itself. A model sees only what happened: each week's sends, opens,
clicks and purchases. This script runs a particle filter over those outcomes with
the simulator's own dynamics and likelihoods (its constants, which no model knows),
then plays each particle's next ``horizon`` weeks, so its churn probability is the
best estimate the outcomes allow, up to the particles' sampling. Its AUC over the
oracle's is what no model could beat on that account.

Run: ``.venv/bin/python -m bench.churn_ceiling [--subscribers 50000] [--seeds 0 1 2]
[--particles 200] [--sends-per-week 1]``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from ml.simulator import simulate  # noqa: E402


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _log_bernoulli(ll: np.ndarray, at: np.ndarray, hit: np.ndarray, p: np.ndarray) -> None:
    """Add log P(outcome) for the rows ``at`` (unique), ``hit`` their outcomes."""
    p = np.clip(p, 1e-12, 1 - 1e-12)
    ll[at] += np.where(hit[:, None], np.log(p), np.log1p(-p))


def _step(rng: np.random.Generator, z: np.ndarray, mean: np.ndarray, drift: np.ndarray) -> np.ndarray:
    """The simulator's weekly move of the hidden engagement (ml.simulator._State.step)."""
    shock = np.where(rng.random(z.shape) < 0.02, rng.normal(-1.5, 1.0, z.shape), 0.0)
    return z + 0.1 * (mean - z) + drift + rng.normal(0, 0.3, z.shape) + shock


def _resample(rng: np.random.Generator, logw: np.ndarray, *states: np.ndarray) -> None:
    """Systematic resampling, in place, of the rows whose effective sample size fell
    under half the particles; their weights are reset."""
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    rows = np.flatnonzero(1.0 / (w ** 2).sum(axis=1) < logw.shape[1] / 2)
    if not len(rows):
        return
    particles = logw.shape[1]
    cumulative = np.cumsum(w[rows], axis=1)
    cumulative[:, -1] = 1.0
    positions = (rng.random((len(rows), 1)) + np.arange(particles)) / particles
    offsets = np.arange(len(rows))[:, None]
    picks = np.searchsorted((cumulative + offsets).ravel(), (positions + offsets).ravel()).reshape(len(rows), -1)
    picks -= offsets * particles
    for state in states:
        state[rows] = np.take_along_axis(state[rows], picks, axis=1)
    logw[rows] = 0.0


def filtered_churn(weekly: list[dict[str, Any]], n: int, particles: int, sends_per_week: float, horizon_weeks: int,
                   seed: int) -> np.ndarray:
    """Each subscriber's churn probability given the outcomes ``weekly`` (by position)."""
    rng = np.random.default_rng(seed + 10_000)
    shape = (n, particles)
    mean = rng.normal(-0.3, 1.3, shape)
    z = rng.normal(mean, 0.8)
    drift = rng.normal(-0.01, 0.02, shape)
    logw = np.zeros(shape)
    for seen in weekly:
        ll = np.zeros(shape)
        p_open = _sigmoid(z)
        for sent, opened in zip(seen["sent"], seen["opened"]):
            _log_bernoulli(ll, sent, np.isin(sent, opened), p_open[sent])
        for events, clicked in zip(seen["open_events"], seen["clicks"]):
            _log_bernoulli(ll, events, clicked, 0.3 * _sigmoid(z[events] + 0.5))
        _log_bernoulli(ll, seen["may_buy"], np.isin(seen["may_buy"], seen["bought"]), 0.04 * p_open[seen["may_buy"]])
        logw += ll
        _resample(rng, logw, z, mean, drift)
        z = _step(rng, z, mean, drift)
        mean = mean + drift
    # One future a particle, as ml.simulator._truth plays them.
    quiet = np.ones(shape, bool)
    left = np.zeros(shape, bool)
    for _ in range(horizon_weeks):
        p = _sigmoid(z)
        for _ in range(max(int(round(sends_per_week)), 1)):
            quiet &= ~((rng.random(shape) < p) & ~left)
        left |= rng.random(shape) < 0.006 * _sigmoid(-z - 1)
        z = _step(rng, z, mean, drift)
        mean = mean + drift
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    return ((quiet | left) * w).sum(axis=1) / w.sum(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=50_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--particles", type=int, default=200)
    parser.add_argument("--sends-per-week", type=float, default=1.0)
    args = parser.parse_args()
    for seed in args.seeds:
        weekly: list[dict[str, Any]] = []
        sim = simulate(args.subscribers, seed=seed, sends_per_week=args.sends_per_week, weekly=weekly)
        started = time.perf_counter()
        ceiling = filtered_churn(weekly, args.subscribers, args.particles, args.sends_per_week,
                                 sim.horizon.days // 7, seed)
        truth = sim.truth
        live = truth["live"].to_numpy()
        labels = truth["churned"].to_numpy()[live]
        oracle = roc_auc_score(labels, truth["churn_probability"].to_numpy()[live])
        best = roc_auc_score(labels, ceiling[live])
        print(f"seed {seed}: {args.subscribers:,} subscribers, {args.sends_per_week} sends/week, {args.particles} "
              f"particles ({time.perf_counter() - started:.0f} s): filtered AUC {best:.4f}, oracle {oracle:.4f}, "
              f"ceiling of the ratio {best / oracle:.4f}", flush=True)


if __name__ == "__main__":
    main()
