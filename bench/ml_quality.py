"""How good the ml models are, on simulated accounts with known truth (ml.simulator).

For each seed: simulate ``--subscribers`` subscribers over ``--weeks`` weeks, train
churn, engagement and send time with ``as_of`` at the end of the history (as the
service does), score everyone, and compare with the truth:
- churn: ROC AUC on the realised next 8 weeks of the live subscribers for the
  model, the oracle (ranking by the true probability), and each simple rule; the
  model's share of the oracle's AUC and its standard error (bootstrap over the
  subscribers); Brier score against the realised labels;
- engagement: Spearman correlation with the hidden engagement at the end;
- send time: share of subscribers with five or more opens whose learned hour is
  within one hour (circular) of their true hour, against the fixed rule (10h).
``--sends-per-week`` changes the simulated account's cadence (a second shape of
account, for models not tuned to one).

Run: ``.venv/bin/python -m bench.ml_quality [--subscribers 50000] [--seeds 0 1]``.
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
from scipy.stats import spearmanr  # noqa: E402
from sklearn.metrics import brier_score_loss, roc_auc_score  # noqa: E402

from ml import api  # noqa: E402
from ml.churn import rule_values  # noqa: E402
from ml.simulator import Simulation, simulate  # noqa: E402


def circular_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.abs(a - b) % 24
    return np.minimum(d, 24 - d)


def ratio_standard_error(labels: np.ndarray, model: np.ndarray, oracle: np.ndarray, resamples: int = 300) -> float:
    """The model/oracle AUC ratio's standard error, by bootstrap over subscribers."""
    rng = np.random.default_rng(0)
    ratios = []
    for _ in range(resamples):
        pick = rng.integers(0, len(labels), len(labels))
        ratios.append(roc_auc_score(labels[pick], model[pick]) / roc_auc_score(labels[pick], oracle[pick]))
    return float(np.std(ratios))


def compare(sim: Simulation, scores: pd.DataFrame, churn: dict[str, Any]) -> pd.DataFrame:
    """Print how ``scores`` (by subscriber_id: churn_risk, engagement, best_send_hour)
    compare with the simulator's truth; ``churn`` is the churn run's metrics.
    Returns the truth joined with the scores."""
    truth = sim.truth.rename(columns={"engagement": "hidden_engagement"}).join(scores, how="left")
    live = truth[truth["live"]]
    missing = int(live["churn_risk"].isna().sum())
    labels = live["churned"].to_numpy()
    risk = live["churn_risk"].fillna(1.0).to_numpy()
    model_auc = roc_auc_score(labels, risk)
    oracle_auc = roc_auc_score(labels, live["churn_probability"])
    error = ratio_standard_error(labels, risk, live["churn_probability"].to_numpy())
    frame = api.features(sim.history, sim.end).loc[live.index]
    rules = {name: roc_auc_score(labels, values) for name, values in rule_values(frame).items()}
    print(f"  churn ({churn['scored_by']}, {churn['estimator']}): AUC {model_auc:.4f}, oracle {oracle_auc:.4f},"
          f" ratio {model_auc / oracle_auc:.4f} (standard error {error:.4f}); rules "
          + ", ".join(f"{k} {v:.4f}" for k, v in rules.items())
          + f"; beats every rule: {model_auc > max(rules.values())}; live subscribers without a score: {missing}")
    print(f"  churn Brier {brier_score_loss(labels, risk):.4f} (oracle"
          f" {brier_score_loss(labels, live['churn_probability']):.4f}); base rate {labels.mean():.3f};"
          f" the model's own out-of-time AUC {churn['roc_auc']:.4f} vs best rule {max(churn['rule_auc'].values()):.4f}")
    rho = spearmanr(live["engagement"], live["hidden_engagement"], nan_policy="omit").statistic
    print(f"  engagement: Spearman with the hidden engagement {rho:.4f}")
    five = truth[(truth["opens"] >= 5) & truth["best_send_hour"].notna()]
    hits = (circular_distance(five["best_send_hour"].to_numpy(), five["true_hour"].to_numpy()) <= 1).mean()
    rule = (circular_distance(np.full(len(five), 10), five["true_hour"].to_numpy()) <= 1).mean()
    few = truth[(truth["opens"] >= 1) & (truth["opens"] < 5) & truth["best_send_hour"].notna()]
    few_hits = (circular_distance(few["best_send_hour"].to_numpy(), few["true_hour"].to_numpy()) <= 1).mean()
    print(f"  send time: within 1 h of the true hour for {hits:.4f} of {len(five):,} subscribers with >= 5 opens"
          f" (fixed 9-12h rule {rule:.4f}); 1-4 opens {few_hits:.4f} of {len(few):,}", flush=True)
    return truth


def run(subscribers: int, weeks: int, seed: int, sends_per_week: float) -> None:
    started = time.perf_counter()
    sim = simulate(subscribers, weeks=weeks, seed=seed, sends_per_week=sends_per_week)
    history = sim.history
    print(f"seed {seed}: {subscribers:,} subscribers, {weeks} weeks, {sends_per_week} sends/week,"
          f" {len(history.events):,} events (simulated in {time.perf_counter() - started:.0f} s)", flush=True)
    started = time.perf_counter()
    models = {"churn": api.train_churn(history, sim.end), "engagement": api.train_engagement(history, sim.end),
              "send_time": api.train_send_time(history, sim.end)}
    print(f"  trained all three in {time.perf_counter() - started:.0f} s; engagement scored by"
          f" {models['engagement'].metrics['scored_by']}", flush=True)
    compare(sim, api.score_all(models, history, sim.end).set_index("subscriber_id"), models["churn"].metrics)
    st = models["send_time"].metrics
    print(f"  send time: alpha {models['send_time'].params['alpha']}, width {models['send_time'].params['width_hours']} h;"
          f" held-out later opens within 1 h {st['later_opens_within_1h']:.4f} (rule {st['rule_9_12_within_1h']:.4f})",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=50_000)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--sends-per-week", type=float, default=1.0)
    args = parser.parse_args()
    for seed in args.seeds:
        run(args.subscribers, args.weeks, seed, args.sends_per_week)


if __name__ == "__main__":
    main()
