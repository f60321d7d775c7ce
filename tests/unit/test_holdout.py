"""Holdouts' pure parts: the draw (sequencing.holdout), the setting's validation,
and the lift's intervals (analytics.holdout) against the literature."""
from __future__ import annotations

import numpy as np
import pytest

from analytics.holdout import lift, newcombe_interval, wilson_interval
from sequencing.errors import InvalidInputError
from sequencing.holdout import holdout_point, is_held_out
from sequencing.settings_schema import validate_settings

# Newcombe, "Interval estimation for the difference between independent
# proportions: comparison of eleven methods", Statistics in Medicine 1998;17:873-890,
# Table II, method 10 (the hybrid score interval), 95%, to four decimals.
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("counts", "published"), NEWCOMBE_TABLE_II)
def test_the_interval_is_newcombes_method_10_as_his_table_gives_it(counts, published):
    low, high = newcombe_interval(*counts)
    assert (round(low, 4), round(high, 4)) == published


def test_wilson_interval_for_no_successes_in_ten_is_the_textbook_one():
    # 0/10 at 95%: (0, z²/(n + z²)) = (0, 0.2775), the bound Table II's zero rows share.
    low, high = wilson_interval(0, 10)
    assert low == 0 and round(high, 4) == 0.2775


def test_the_lift_waits_for_enough_enrollments_in_each_group():
    answer = lift((5, 100), (1, 29))
    assert answer["status"] == "insufficient_data"
    assert answer["absolute_lift"] is None and answer["absolute_lift_interval"] is None
    assert answer["groups"][1] == {"group": "held_out", "enrollments": 29, "converted": 1, "rate": 1 / 29}
    assert lift((5, 100), (1, 30))["status"] == "ok"
    assert lift((0, 0), (0, 0))["groups"][0]["rate"] is None


def test_relative_lift_is_absent_without_held_out_conversions_and_has_no_interval_without_treated_ones():
    none_held = lift((10, 100), (0, 50))
    assert none_held["status"] == "ok" and none_held["absolute_lift"] == pytest.approx(0.1)
    assert none_held["relative_lift"] is None and none_held["relative_lift_interval"] is None
    none_treated = lift((0, 100), (5, 50))
    assert none_treated["relative_lift"] == pytest.approx(-1.0) and none_treated["relative_lift_interval"] is None


def test_the_interval_covers_the_true_lift_about_as_often_as_it_says():
    rng = np.random.default_rng(18)
    p_t, p_h, n_t, n_h = 0.12, 0.08, 900, 300
    treated, held = rng.binomial(n_t, p_t, 2000), rng.binomial(n_h, p_h, 2000)
    covered = sum(low <= p_t - p_h <= high for low, high in
                  (newcombe_interval(int(x), n_t, int(y), n_h) for x, y in zip(treated, held)))
    assert 0.93 <= covered / 2000 <= 0.97


def test_the_draw_is_stable_nested_and_near_the_percent():
    assert is_held_out(7, 42, 20) == is_held_out(7, 42, 20)
    assert not is_held_out(7, 42, 0) and not is_held_out(7, 42, None)
    points = [holdout_point(7, sub) for sub in range(20_000)]
    assert all(0 <= p < 100 for p in points)
    at_10 = {sub for sub in range(20_000) if is_held_out(7, sub, 10)}
    at_30 = {sub for sub in range(20_000) if is_held_out(7, sub, 30)}
    assert at_10 < at_30  # raising the percent only adds people to the holdout
    # binomial(20,000, p): four standard deviations either side
    for held, p in ((len(at_10), 0.1), (len(at_30), 0.3)):
        assert abs(held - 20_000 * p) <= 4 * (20_000 * p * (1 - p)) ** 0.5, (held, p)
    other = {sub for sub in range(20_000) if is_held_out(8, sub, 10)}
    assert other != at_10  # each sequence draws its own


def test_the_setting_is_a_number_from_0_to_50():
    assert validate_settings({"holdout_percent": 12.5})["holdout_percent"] == 12.5
    assert "holdout_percent" not in validate_settings({"holdout_percent": 0})
    for bad in (50.01, -1, "5", True, float("nan")):
        with pytest.raises(InvalidInputError) as raised:
            validate_settings({"holdout_percent": bad})
        assert "settings.holdout_percent" in raised.value.errors, bad
