"""Simulation of A/B decisions under continuous monitoring (issue: analytics pool, item 4).

Prints, for the platform's rule (analytics/experiments.py: mSPRT confidence
sequences) and for the naive rule (a two-proportion z-test at 0.05 repeated after
every batch, stopping at the first p < 0.05):

- the false-winner rate over A/A experiments (two identical variants), checked
  after every batch of sends up to a maximum; also for a GrowthBook-style Bayesian
  rule (chance to win >= 95% and expected loss under 0.25% of the control's rate),
  the alternative this platform did not choose;
- for true rates 20% vs 25%, how often the right and the wrong winner are found,
  and after how many sends per variant (median and percentiles), at several seeds;
- the same for three variants (20%, 20%, 25%).

Run: ``.venv/bin/python -m bench.experiments [--experiments 1000] [--batch 100] [--batches 50]``
"""
from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy.stats import norm

from analytics.experiments import DECIDED, decide

Rule = Callable[[NDArray[np.float64], NDArray[np.float64]], tuple[NDArray[np.int_], NDArray[np.int_]]]


def platform_rule(confidence: float = 0.95, min_per_variant: int = 100) -> Rule:
    return lambda sent, successes: decide(sent, successes, confidence=confidence, min_per_variant=min_per_variant)


def naive_rule(alpha: float = 0.05, min_per_variant: int = 100) -> Rule:
    """Two variants only: the fixed-horizon z-test, wrongly applied at every look."""
    def rule(sent: NDArray[np.float64], successes: NDArray[np.float64]) -> tuple[NDArray[np.int_], NDArray[np.int_]]:
        n_a, n_b, x_a, x_b = sent[..., 0], sent[..., 1], successes[..., 0], successes[..., 1]
        pooled = (x_a + x_b) / (n_a + n_b)
        se = np.sqrt(np.maximum(pooled * (1 - pooled), 1e-12) * (1 / n_a + 1 / n_b))
        z = (x_a / n_a - x_b / n_b) / se
        won = (2 * norm.sf(np.abs(z)) < alpha) & (n_a >= min_per_variant) & (n_b >= min_per_variant)
        return np.where(won, DECIDED, 0), np.where(won, np.where(z > 0, 0, 1), -1)
    return rule


def expected_loss_rule(chance: float = 0.95, risk: float = 0.0025, min_per_variant: int = 100) -> Rule:
    """Two variants only: a GrowthBook-style Bayesian rule (normal posterior of the
    difference, flat prior): ship a variant when its chance to win is at least
    ``chance`` and its expected loss, relative to the control's rate, is under ``risk``."""
    def rule(sent: NDArray[np.float64], successes: NDArray[np.float64]) -> tuple[NDArray[np.int_], NDArray[np.int_]]:
        rate = successes / sent
        mean = rate[..., 1] - rate[..., 0]
        sd = np.sqrt(np.maximum((rate * (1 - rate) / sent).sum(-1), 1e-12))
        win_b = norm.cdf(mean / sd)
        loss_b = sd * norm.pdf(mean / sd) - mean * norm.cdf(-mean / sd)  # E[max(A - B, 0)]
        loss_a = loss_b + mean  # E[max(B - A, 0)]
        scale = np.maximum(rate[..., 0], 1e-12)
        ready = (sent >= min_per_variant).all(-1)
        pick_b = ready & (win_b >= chance) & (loss_b / scale < risk)
        pick_a = ready & (win_b <= 1 - chance) & (loss_a / scale < risk)
        return np.where(pick_a | pick_b, DECIDED, 0), np.where(pick_b, 1, np.where(pick_a, 0, -1))
    return rule


def simulate(rates: list[float], rule: Rule, *, experiments: int, batch: int, batches: int,
             seed: int) -> tuple[NDArray[np.int_], NDArray[np.int_]]:
    """(winner index or -1, sends per variant at the first decision or -1) for each
    experiment, looking after every batch of ``batch`` sends per variant and
    stopping at the first decision (as the platform does: a decision is final)."""
    rng = np.random.default_rng(seed)
    k = len(rates)
    outcomes = rng.binomial(batch, rates, size=(batches, experiments, k)).astype(float)
    successes = np.cumsum(outcomes, axis=0)
    winner = np.full(experiments, -1)
    at = np.full(experiments, -1)
    for look in range(batches):
        sent = np.full((experiments, k), float(batch * (look + 1)))
        status, won = rule(sent, successes[look])
        new = (winner < 0) & (status == DECIDED)
        winner[new], at[new] = won[new], batch * (look + 1)
    return winner, at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100, help="sends per variant between looks")
    parser.add_argument("--batches", type=int, default=50, help="looks before the experiment is stopped")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    size = {"experiments": args.experiments, "batch": args.batch, "batches": args.batches}
    print(f"{args.experiments} experiments per seed, a look after every {args.batch} sends per variant, "
          f"up to {args.batch * args.batches} per variant")
    print("\nA/A (identical variants): share of experiments that ever declare a winner")
    for label, rule in (("platform (mSPRT, 95%), 20%", platform_rule()), ("naive z-test at 0.05, 20%", naive_rule()),
                        ("expected loss < 0.25%, 20%", expected_loss_rule())):
        rates = [float(np.mean(simulate([0.2, 0.2], rule, seed=s, **size)[0] >= 0)) for s in range(args.seeds)]
        print(f"  {label:28} mean {np.mean(rates):6.1%}  per seed " + " ".join(f"{r:.1%}" for r in rates))
    for rate in (0.03, 0.5):
        rates = [float(np.mean(simulate([rate, rate], platform_rule(), seed=s, **size)[0] >= 0))
                 for s in range(args.seeds)]
        print(f"  {'platform (mSPRT, 95%), ' + f'{rate:.0%}':28} mean {np.mean(rates):6.1%}  per seed "
              + " ".join(f"{r:.1%}" for r in rates))
    fixed = (norm.ppf(0.975) + norm.ppf(0.8)) ** 2 * (0.2 * 0.8 + 0.25 * 0.75) / 0.05 ** 2
    print(f"\nFor scale: one fixed-horizon z-test (looked at once) of 20% vs 25% with 80% power needs {fixed:.0f} "
          "sends per variant")
    for true in ([0.20, 0.25], [0.20, 0.20, 0.25]):
        best = int(np.argmax(true))
        print(f"\nTrue rates {' vs '.join(f'{r:.0%}' for r in true)} (platform rule): right winner, wrong winner, "
              "sends per variant at the decision (p10 / median / p90)")
        for seed in range(args.seeds):
            winner, at = simulate(true, platform_rule(), seed=seed, **size)
            right = winner == best
            p10, p50, p90 = np.percentile(at[right], [10, 50, 90]) if right.any() else (np.nan,) * 3
            print(f"  seed {seed}: right {right.mean():6.1%}  wrong {np.mean((winner >= 0) & ~right):5.1%}  "
                  f"sends {p10:6.0f} / {p50:6.0f} / {p90:6.0f}")


if __name__ == "__main__":
    main()
