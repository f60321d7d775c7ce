"""How good the ml models are, on simulated accounts with known truth (ml.simulator).

For each seed: simulate ``--subscribers`` subscribers over ``--weeks`` weeks, train
churn, engagement and send time with ``as_of`` at the end of the history (as the
service does), score everyone, and compare with the truth:
- churn: ROC AUC on the realised next 8 weeks of the live subscribers for the
  model, the oracle (ranking by the true probability), and each simple rule; the
  model's share of the oracle's AUC; Brier score against the realised labels;
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.metrics import brier_score_loss, roc_auc_score  # noqa: E402

from ml import api  # noqa: E402
from ml.churn import rule_values  # noqa: E402
from ml.simulator import simulate  # noqa: E402


def circular_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.abs(a - b) % 24
    return np.minimum(d, 24 - d)


def run(subscribers: int, weeks: int, seed: int, sends_per_week: float) -> None:
    started = time.perf_counter()
    sim = simulate(subscribers, weeks=weeks, seed=seed, sends_per_week=sends_per_week)
    history = sim.history
    print(f"seed {seed}: {subscribers:,} subscribers, {weeks} weeks, {sends_per_week} sends/week,"
          f" {len(history.events):,} events (simulated in {time.perf_counter() - started:.0f} s)", flush=True)
    started = time.perf_counter()
    models = {"churn": api.train_churn(history, sim.end), "engagement": api.train_engagement(history, sim.end),
              "send_time": api.train_send_time(history, sim.end)}
    trained = time.perf_counter() - started
    scores = api.score_all(models, history, sim.end).set_index("subscriber_id")
    truth = sim.truth.rename(columns={"engagement": "hidden_engagement"}).join(scores)
    live = truth[truth["live"]]
    labels = live["churned"].to_numpy()
    model_auc = roc_auc_score(labels, live["churn_risk"])
    oracle_auc = roc_auc_score(labels, live["churn_probability"])
    frame = api.features(history, sim.end).loc[live.index]
    rules = {name: roc_auc_score(labels, values) for name, values in rule_values(frame).items()}
    churn = models["churn"].metrics
    print(f"  churn ({churn['scored_by']}, {churn['estimator']}; trained all three in {trained:.0f} s):"
          f" AUC {model_auc:.4f}, oracle {oracle_auc:.4f}, ratio {model_auc / oracle_auc:.4f};"
          f" rules " + ", ".join(f"{k} {v:.4f}" for k, v in rules.items())
          + f"; beats every rule: {model_auc > max(rules.values())}")
    print(f"  churn Brier {brier_score_loss(labels, live['churn_risk']):.4f} (oracle"
          f" {brier_score_loss(labels, live['churn_probability']):.4f}); base rate {labels.mean():.3f};"
          f" the model's own out-of-time AUC {churn['roc_auc']:.4f} vs best rule {max(churn['rule_auc'].values()):.4f}")
    rho = spearmanr(live["engagement"], live["hidden_engagement"]).statistic
    print(f"  engagement ({models['engagement'].metrics['scored_by']}): Spearman with the hidden engagement {rho:.4f}")
    five = truth[truth["opens"] >= 5]
    hits = (circular_distance(five["best_send_hour"].to_numpy(), five["true_hour"].to_numpy()) <= 1).mean()
    rule = (circular_distance(np.full(len(five), 10), five["true_hour"].to_numpy()) <= 1).mean()
    few = truth[(truth["opens"] >= 1) & (truth["opens"] < 5)]
    few_hits = (circular_distance(few["best_send_hour"].to_numpy(), few["true_hour"].to_numpy()) <= 1).mean()
    st = models["send_time"].metrics
    print(f"  send time: within 1 h of the true hour for {hits:.4f} of {len(five):,} subscribers with >= 5 opens"
          f" (fixed 9-12h rule {rule:.4f}); 1-4 opens {few_hits:.4f} of {len(few):,};"
          f" alpha {models['send_time'].params['alpha']}, width {models['send_time'].params['width_hours']} h;"
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
