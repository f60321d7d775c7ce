"""The planned day-by-day volumes of a warming plan: curves, exact ends, and the fields bad input names."""
from __future__ import annotations

from datetime import date

import pytest

from warming.schedule import MAX_DAYS, MAX_VOLUME, ScheduleError, daily_volumes, day_number, format_table


def error_field(**kwargs) -> str:
    with pytest.raises(ScheduleError) as caught:
        daily_volumes(**kwargs)
    return caught.value.field


# the default plan: 50 -> 3,000 over 30 days, geometric

def test_it_starts_the_default_plan_at_exactly_the_start_volume():
    assert daily_volumes()[0] == 50


def test_it_reaches_exactly_the_target_volume_on_the_default_plans_last_day():
    volumes = daily_volumes()
    assert len(volumes) == 30
    assert volumes[29] == 3000
    assert max(volumes) == 3000


def test_it_grows_the_default_plan_by_one_constant_factor_within_rounding():
    factor = (3000 / 50) ** (1 / 29)
    for index, volume in enumerate(daily_volumes()):
        assert abs(volume - 50 * factor ** index) <= 0.5, f"day {index + 1}"


def test_it_climbs_the_default_plan_every_single_day():
    volumes = daily_volumes()
    assert all(later > earlier for earlier, later in zip(volumes, volumes[1:]))


def test_it_keeps_each_daily_step_of_the_default_plan_near_fifteen_percent():
    volumes = daily_volumes()
    steps = [later / earlier - 1 for earlier, later in zip(volumes, volumes[1:])]
    assert all(0.13 < step < 0.17 for step in steps)


@pytest.mark.parametrize("days, start, target", [(2, 50, 3000), (7, 1, 2), (30, 100, 100), (14, 1, 10_000_000),
                                                 (MAX_DAYS, 1, MAX_VOLUME), (60, 999, 1000)])
@pytest.mark.parametrize("curve", ["geometric", "linear"])
def test_it_never_lowers_the_volume_and_pins_both_ends(days, start, target, curve):
    volumes = daily_volumes(days, start, target, curve)
    assert len(volumes) == days
    assert (volumes[0], volumes[-1]) == (start, target)
    assert all(later >= earlier for earlier, later in zip(volumes, volumes[1:]))


def test_it_keeps_a_flat_plan_flat():
    assert daily_volumes(5, 200, 200) == [200] * 5


def test_it_accepts_a_one_day_plan_that_is_already_at_its_target():
    assert daily_volumes(1, 500, 500) == [500]


# linear

def test_it_adds_the_same_amount_each_day_on_a_linear_curve():
    volumes = daily_volumes(11, 100, 1100, "linear")
    assert volumes == [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100]


def test_it_rounds_a_linear_curve_half_up():
    # 50 + 2950 * i / 29: day 2 is 151.72..., day 3 is 253.44...
    assert daily_volumes(30, 50, 3000, "linear")[:3] == [50, 152, 253]


# custom

def test_it_follows_a_custom_table_as_given_even_when_it_dips():
    table = [10, 20, 15, 40]
    assert daily_volumes(4, curve="custom", table=table) == table


def test_it_ignores_the_start_and_target_volumes_of_a_custom_plan():
    assert daily_volumes(2, 5000, 5000, "custom", [1, 2]) == [1, 2]


def test_it_names_the_schedule_when_a_custom_table_has_the_wrong_length():
    assert error_field(days=3, curve="custom", table=[1, 2]) == "schedule"


def test_it_names_the_schedule_when_the_custom_curve_has_no_table():
    assert error_field(days=3, curve="custom") == "schedule"


@pytest.mark.parametrize("bad", [0, -4, 2.5, True, "9", MAX_VOLUME + 1])
def test_it_names_the_day_of_a_custom_table_that_is_not_a_positive_volume(bad):
    assert error_field(days=4, curve="custom", table=[5, 6, bad, 8]) == "schedule.2"


def test_it_refuses_a_table_given_with_a_computed_curve():
    assert error_field(days=2, curve="geometric", table=[1, 2]) == "schedule"


# input errors

@pytest.mark.parametrize("days", [0, -1, MAX_DAYS + 1, 3.0, True, None])
def test_it_names_days_when_the_length_is_out_of_range(days):
    assert error_field(days=days) == "days"


@pytest.mark.parametrize("start", [0, -50, 50.5, MAX_VOLUME + 1, False])
def test_it_names_the_start_volume_when_it_is_not_a_valid_volume(start):
    assert error_field(days=30, start_volume=start, target_volume=MAX_VOLUME) == "start_volume"


@pytest.mark.parametrize("target", [0, MAX_VOLUME + 1, 49, "3000"])
def test_it_names_the_target_volume_when_it_is_invalid_or_below_the_start(target):
    assert error_field(days=30, start_volume=50, target_volume=target) == "target_volume"


def test_it_names_the_target_volume_of_a_one_day_plan_that_would_have_to_jump():
    assert error_field(days=1, start_volume=50, target_volume=3000) == "target_volume"


@pytest.mark.parametrize("curve", ["exponential", "", "Geometric", None])
def test_it_names_the_curve_when_it_is_unknown(curve):
    assert error_field(curve=curve) == "curve"


def test_it_raises_schedule_errors_as_value_errors_with_a_readable_message():
    with pytest.raises(ValueError, match="days: Must be an integer from 1 to 365"):
        daily_volumes(days=400)


# day numbers and the schedule table

def test_it_counts_the_start_date_as_day_one_and_earlier_dates_below_it():
    start = date(2025, 3, 1)
    assert day_number(start, date(2025, 3, 1)) == 1
    assert day_number(start, date(2025, 3, 30)) == 30
    assert day_number(start, date(2025, 2, 28)) == 0


def test_it_formats_the_default_plan_as_a_markdown_table_with_daily_growth():
    lines = format_table(daily_volumes()).splitlines()
    assert lines[0] == "| Day | Volume | Change |"
    assert len(lines) == 2 + 30
    assert lines[2] == "| 1 | 50 |  |"
    assert lines[3] == "| 2 | 58 | +16.0% |"
    assert lines[-1] == "| 30 | 3,000 | +15.2% |"
