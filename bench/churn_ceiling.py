"""The best churn ranking that a history's outcomes allow, on the simulator: the ceiling
of the model's ratio to the oracle in bench.ml_quality.

The oracle ranks live subscribers by their true churn probability, computed from the
hidden engagement itself. A model sees only what happened: each week's sends, opens,
clicks and purchases. This script runs a particle filter over those outcomes with
the simulator's own dynamics and likelihoods (its constants, which no model knows),
then takes each particle's chance of churning in the next ``horizon`` weeks, so its
churn probability is the best estimate the outcomes allow, up to the particles'
sampling (800 particles instead of 200 raise it by about 0.001). Its AUC over the
oracle's is what no model could beat on that account.

``--oracle-check`` also scores the oracle itself three ways on the same labels: by
the share of 200 played futures that churn (how the truth was computed before
2026-12-07), by the exact chance along 200 engagement paths (the simulator's truth
now) and along 1,000: how much the first's noise lowered the oracle's AUC, and
whether 200 paths are enough.

Run: ``.venv/bin/python -m bench.churn_ceiling [--subscribers 50000] [--seeds 0 1 2]
[--particles 200] [--sends-per-week 1] [--oracle-check]``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from ml.simulator import (churn_chance, churned_futures, click_chance, first_state, horizon_sends,  # noqa: E402
                          next_engagement, open_chance, purchase_chance, simulate)


def _log_bernoulli(ll: np.ndarray, at: np.ndarray, hit: np.ndarray, p: np.ndarray) -> None:
    """Add log P(outcome) for the rows ``at`` (unique), ``hit`` their outcomes."""
    p = np.clip(p, 1e-12, 1 - 1e-12)
    ll[at] += np.where(hit[:, None], np.log(p), np.log1p(-p))


def _weights(logw: np.ndarray) -> np.ndarray:
    """Each row's particle weights from their logs, summing to one."""
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    return w / w.sum(axis=1, keepdims=True)


def _resample(rng: np.random.Generator, logw: np.ndarray, *states: np.ndarray) -> None:
    """Systematic resampling, in place, of the rows whose effective sample size fell
    under half the particles; their weights are reset."""
    w = _weights(logw)
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
    mean, z, drift = first_state(rng, shape)
    logw = np.zeros(shape)
    for seen in weekly:
        ll = np.zeros(shape)
        p_open = open_chance(z)
        for sent, opened in zip(seen["sent"], seen["opened"]):
            _log_bernoulli(ll, sent, np.isin(sent, opened), p_open[sent])
        for events, clicked in zip(seen["open_events"], seen["clicks"]):
            _log_bernoulli(ll, events, clicked, click_chance(z[events]))
        may_buy = seen["may_buy"]
        _log_bernoulli(ll, may_buy, np.isin(may_buy, seen["bought"]), purchase_chance(z[may_buy]))
        logw += ll
        _resample(rng, logw, z, mean, drift)
        z = next_engagement(rng, z, mean, drift)
        mean = mean + drift
    # One engagement path a particle, with its exact chance of churning, as the
    # simulator computes the truth's.
    chance = churn_chance(rng, z, mean, drift, horizon_sends(sends_per_week), horizon_weeks)
    return (chance * _weights(logw)).sum(axis=1)


def oracle_check(truth: pd.DataFrame, live: np.ndarray, labels: np.ndarray, sends: int, weeks: int, seed: int) -> str:
    """The oracle's AUC by 200 played futures, by 200 exact paths, and by 1,000."""
    state = [truth[c].to_numpy()[live][:, None] for c in ("engagement", "mean", "drift")]
    rng = np.random.default_rng(seed + 20_000)

    def auc(score: np.ndarray) -> float:
        return float(roc_auc_score(labels, score))

    def by(way: Any, columns: int) -> float:
        return auc(way(rng, *(np.broadcast_to(a, (len(a), columns)) for a in state), sends, weeks).mean(axis=1))

    return (f"oracle by 200 played futures {by(churned_futures, 200):.4f}, by 200 paths "
            f"{auc(truth['churn_probability'].to_numpy()[live]):.4f}, by 1,000 paths {by(churn_chance, 1000):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=50_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--particles", type=int, default=200)
    parser.add_argument("--sends-per-week", type=float, default=1.0)
    parser.add_argument("--oracle-check", action="store_true", help="score the oracle by futures, 200 and 1,000 paths")
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
        if args.oracle_check:
            sends = horizon_sends(args.sends_per_week)
            print(f"  {oracle_check(truth, live, labels, sends, sim.horizon.days // 7, seed)}", flush=True)


if __name__ == "__main__":
    main()
