"""A/B/n decisions that stay valid when looked at after every rollup
(analytics/experiments.py, analytics/sequential.py). Pure: counts in, decisions out.

The simulations run the platform's own decision function over a thousand
experiments at once (numpy, seeded, so each run is the same run): each experiment
is looked at after every batch of sends, up to a maximum, and its first decision
is its decision, as the platform keeps a decision once made.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.stats import norm

from analytics.experiments import DECIDED, decide, experiment_report, promoted_variant
from analytics.sequential import half_width, p_value

BATCH, LOOKS, EXPERIMENTS = 100, 50, 1000  # a look after every 100 sends per variant, up to 5,000


def platform(sent: np.ndarray, successes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return decide(sent, successes, confidence=0.95, min_per_variant=100)


def naive_z_test(sent: np.ndarray, successes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fixed-horizon two-proportion z-test at 0.05, applied at every look."""
    rate = successes / sent
    pooled = successes.sum(-1) / sent.sum(-1)
    z = (rate[..., 1] - rate[..., 0]) / np.sqrt(pooled * (1 - pooled) * (1 / sent[..., 0] + 1 / sent[..., 1]))
    won = 2 * norm.sf(np.abs(z)) < 0.05
    return np.where(won, DECIDED, 0), np.where(won, (z > 0).astype(int), -1)


def first_decisions(rates: list[float], rule: Callable, seed: int,
                    batch: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(winner or -1, sends of the first variant when it was declared) for each
    experiment; ``batch`` is each variant's sends between looks (weighted variants)."""
    batch = batch or [BATCH] * len(rates)
    rng = np.random.default_rng(seed)
    successes = np.cumsum(rng.binomial(batch, rates, size=(LOOKS, EXPERIMENTS, len(rates))), axis=0).astype(float)
    winner, at = np.full(EXPERIMENTS, -1), np.full(EXPERIMENTS, -1)
    for look in range(LOOKS):
        status, won = rule(np.broadcast_to(np.array(batch, dtype=float) * (look + 1), successes[look].shape),
                           successes[look])
        new = (winner < 0) & (status == DECIDED)
        winner[new], at[new] = won[new], batch[0] * (look + 1)
    return winner, at


def report(counts: list[tuple[int, int]], **options) -> dict:
    variants = [{"name": "ABCDE"[i], "sent": n, "successes": x} for i, (n, x) in enumerate(counts)]
    return experiment_report(2, {"metric": "clicked", **options}, variants)


@pytest.mark.parametrize("rate", [0.03, 0.2])
def test_a_thousand_a_a_experiments_checked_after_every_batch_declare_a_false_winner_at_most_5_percent_of_the_time(
        rate):
    winner, _ = first_decisions([rate, rate], platform, seed=11)
    assert np.mean(winner >= 0) <= 0.05


def test_a_and_a_split_three_to_one_by_weights_declare_a_false_winner_at_most_5_percent_of_the_time():
    winner, _ = first_decisions([0.1, 0.1], platform, seed=13, batch=[150, 50])
    assert np.mean(winner >= 0) <= 0.05


def test_the_naive_z_test_repeated_after_every_batch_declares_a_false_winner_far_more_often():
    winner, _ = first_decisions([0.2, 0.2], naive_z_test, seed=11)
    assert np.mean(winner >= 0) > 0.15


def test_three_identical_variants_checked_after_every_batch_rarely_produce_a_winner():
    winner, _ = first_decisions([0.2, 0.2, 0.2], platform, seed=12)
    assert np.mean(winner >= 0) <= 0.05


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_with_true_rates_of_20_and_25_percent_the_25_percent_variant_is_found_within_5000_sends(seed):
    winner, at = first_decisions([0.20, 0.25], platform, seed=seed)
    assert np.mean(winner == 1) >= 0.90
    assert np.mean(winner == 0) <= 0.05
    assert np.all(at[winner == 1] <= BATCH * LOOKS)


def test_among_20_20_and_25_percent_variants_the_25_percent_one_is_found_and_never_another():
    winner, _ = first_decisions([0.20, 0.20, 0.25], platform, seed=4)
    assert np.mean(winner == 2) >= 0.90
    assert np.mean((winner >= 0) & (winner != 2)) <= 0.05


def test_the_interval_covers_the_true_difference_at_every_look_at_once_in_at_least_95_percent_of_runs():
    rng = np.random.default_rng(5)
    successes = np.cumsum(rng.binomial(BATCH, [0.25, 0.20], size=(LOOKS, EXPERIMENTS, 2)), axis=0)
    sent = BATCH * np.arange(1, LOOKS + 1)[:, None]
    diff, width = half_width(sent, successes[..., 0], sent, successes[..., 1], 0.05)
    missed_once = np.any(np.abs(diff - 0.05) > width, axis=0)
    assert np.mean(missed_once) <= 0.05


def test_the_always_valid_p_value_is_below_alpha_exactly_when_the_interval_excludes_zero():
    rng = np.random.default_rng(6)
    sent = rng.integers(100, 5000, size=(2, 2000))
    successes = rng.binomial(sent, [[0.2], [0.23]])
    diff, width = half_width(sent[0], successes[0], sent[1], successes[1], 0.05)
    assert np.array_equal(p_value(sent[0], successes[0], sent[1], successes[1], 0.05) < 0.05, np.abs(diff) > width)


def test_nothing_is_decided_before_every_variant_has_its_minimum_sends():
    assert report([(99, 0), (99, 99)])["status"] == "running"
    assert report([(99, 0), (99, 99)], min_per_variant=50)["winner"] == "B"


def test_a_clearly_worse_variant_makes_the_control_the_winner_and_it_is_promoted():
    result = report([(2000, 500), (2000, 300)])
    assert (result["status"], result["winner"]) == ("decided", "A")
    assert promoted_variant(result) == "A"
    assert promoted_variant(report([(2000, 500), (2000, 300)], auto_promote=False)) is None


def test_a_variant_that_beats_the_control_but_not_a_third_variant_is_not_declared():
    result = report([(2000, 400), (2000, 600), (2000, 610)])
    assert result["variants"][1]["confidence_interval"][0] > 0  # B is surely better than A ...
    assert (result["status"], result["winner"]) == ("running", None)  # ... but not surely better than C
    assert report([(2000, 400), (2000, 500), (2000, 700)])["winner"] == "C"


def test_no_difference_is_said_when_every_interval_lies_within_a_tenth_of_the_rate():
    result = report([(100_000, 20_000), (100_000, 20_100)])
    assert (result["status"], result["winner"]) == ("no_difference", None)
    assert promoted_variant(result) is None
    assert report([(1000, 200), (1000, 201)])["status"] == "running"


def test_the_report_has_the_api_shape_with_rates_lifts_intervals_and_p_values_against_the_control():
    result = report([(1000, 200), (1000, 250)], confidence=0.9)
    assert (result["step"], result["metric"], result["confidence"]) == (2, "clicked", 0.9)
    control, b = result["variants"]
    assert (control["name"], control["sent"], control["successes"], control["rate"]) == ("A", 1000, 200, 0.2)
    assert control["lift"] is control["confidence_interval"] is control["p_value_always_valid"] is None
    assert b["rate"] == 0.25 and b["lift"] == pytest.approx(0.25) and b["difference"] == pytest.approx(0.05)
    low, high = b["confidence_interval"]
    assert low < 0.05 < high
    assert (b["p_value_always_valid"] < 0.1) == (low > 0) == (result["status"] == "decided")


def test_the_sends_needed_estimate_is_where_the_observed_rates_would_decide():
    result = report([(300, 60), (300, 75)])
    assert result["status"] == "running"
    needed = result["sends_needed_estimate"]
    at = lambda n: report([(n, round(0.20 * n)), (n, round(0.25 * n))])["status"]  # noqa: E731
    assert at(needed + 10) == "decided"
    assert at(needed // 2) == "running"
    assert report([(300, 60), (300, 60)])["sends_needed_estimate"] is None


def test_a_stored_decision_is_kept_when_later_counts_would_not_decide():
    later = experiment_report(0, {"metric": "opened"}, [{"name": "A", "sent": 1000, "successes": 200},
                                                         {"name": "B", "sent": 1000, "successes": 210}],
                              settled={"status": "decided", "winner": "B"})
    assert (later["status"], later["winner"]) == ("decided", "B")


def test_no_sends_yet_is_a_running_experiment_with_zero_rates():
    result = report([(0, 0), (0, 0)])
    assert (result["status"], result["winner"], result["sends_needed_estimate"]) == ("running", None, None)
    assert [v["rate"] for v in result["variants"]] == [0.0, 0.0]
    assert result["variants"][1]["lift"] is None


@pytest.mark.parametrize("counts", [[(10, 11), (10, 1)], [(10, -1), (10, 1)], [(10, 1)]])
def test_impossible_counts_or_a_single_variant_are_refused(counts):
    with pytest.raises(ValueError):
        report(counts)


def test_the_holdout_arm_is_listed_last_and_changes_neither_the_decision_nor_the_variants():
    variants = [{"name": "A", "sent": 400, "successes": 40}, {"name": "B", "sent": 400, "successes": 120}]
    plain = experiment_report(0, {"metric": "converted"}, variants)
    armed = experiment_report(0, {"metric": "converted"}, variants, holdout={"held": 200, "converted": 10})
    assert (armed["status"], armed["winner"]) == (plain["status"], plain["winner"]) == ("decided", "B")
    assert [v["name"] for v in armed["variants"]] == ["A", "B", "holdout"]
    for before, after in zip(plain["variants"], armed["variants"]):
        assert {k: after[k] for k in before} == before
    arm = armed["variants"][2]
    assert (arm["sent"], arm["held"], arm["successes"], arm["rate"]) == (200, 200, 10, 0.05)
    b = armed["variants"][1]
    diff, width = half_width(400, 120, 200, 10, 0.05 / 2)  # two variants each against the arm
    assert b["difference_over_holdout"] == pytest.approx(0.3 - 0.05) == pytest.approx(float(diff))
    assert b["lift_over_holdout"] == pytest.approx(0.3 / 0.05 - 1)
    assert b["confidence_interval_over_holdout"] == pytest.approx([float(diff - width), float(diff + width)])


def test_a_holdout_arm_that_beats_every_variant_still_never_wins():
    variants = [{"name": "A", "sent": 400, "successes": 40}, {"name": "B", "sent": 400, "successes": 40}]
    report = experiment_report(0, {"metric": "converted"}, variants, holdout={"held": 400, "converted": 300})
    assert report["winner"] in (None, "A", "B") and promoted_variant(report) != "holdout"
    assert report["variants"][0]["difference_over_holdout"] == pytest.approx(0.1 - 0.75)


def test_without_conversions_to_count_the_arm_has_no_rate_and_no_variant_a_lift_over_it():
    variants = [{"name": "A", "sent": 10, "successes": 4}, {"name": "B", "sent": 10, "successes": 5}]
    report = experiment_report(0, {"metric": "opened"}, variants, holdout={"held": 7, "converted": None})
    arm = report["variants"][-1]
    assert (arm["name"], arm["sent"], arm["held"], arm["successes"], arm["rate"]) == ("holdout", 7, 7, None, None)
    assert all(v["difference_over_holdout"] is None and v["lift_over_holdout"] is None for v in report["variants"])
    nothing = experiment_report(0, {"metric": "converted"}, variants, holdout={"held": 50, "converted": 0})
    assert nothing["variants"][0]["lift_over_holdout"] is None  # no rate to divide by
    assert nothing["variants"][0]["difference_over_holdout"] == pytest.approx(0.4)
    with pytest.raises(ValueError):
        experiment_report(0, {"metric": "converted"}, variants, holdout={"held": 5, "converted": 6})
