"""A plan's settings validated together, each group's cap, and the daily step over all its groups."""
from __future__ import annotations

import pytest

from warming.errors import WarmingError
from warming.health import Levels, Thresholds, Traffic
from warming.mailbox import GROUPS
from warming.plan import PlanSettings, close_day, group_caps, plan_status, total_cap
from warming.ramp import RampState

CLEAN = Traffic(sent=400, bounced=2)
SPIKE = Traffic(sent=400, bounced=30)  # 7.5%


def everyone(traffic: Traffic) -> dict[str, Traffic]:
    return {group: traffic for group in GROUPS}


def at(level: int, status: str = "warming") -> dict[str, RampState]:
    return {group: RampState(level, status) for group in GROUPS}


# settings

def test_it_defaults_to_fifty_rising_geometrically_to_three_thousand_over_thirty_days():
    settings = PlanSettings()
    assert (settings.volumes[0], settings.volumes[-1], len(settings.volumes)) == (50, 3000, 30)
    assert settings.sending_hours == (8, 20)
    assert settings.zone.key == "UTC"


def test_it_builds_settings_from_json_keeping_defaults_for_what_is_left_out():
    settings = PlanSettings.from_dict({"days": 3, "curve": "custom", "schedule": [10, 30, 20],
                                       "thresholds": {"bounce": {"hold": 0.02}}, "sending_hours": [9, 17],
                                       "timezone": "Europe/Paris"})
    assert settings.volumes == [10, 30, 20]
    assert settings.thresholds.bounce == Levels(0.02, 0.10, 0.20)
    assert settings.sending_hours == (9, 17)
    assert settings.zone.key == "Europe/Paris"


def test_it_round_trips_settings_through_json():
    settings = PlanSettings(days=14, start_volume=100, target_volume=5000, curve="linear",
                            thresholds=Thresholds(min_sample=10), sending_hours=(7, 22), timezone="Asia/Tokyo",
                            shares={"gmail": 0.7, "yahoo": 0.1, "microsoft": 0.1, "other": 0.1})
    assert PlanSettings.from_dict(settings.as_dict()) == settings


@pytest.mark.parametrize("data, field", [
    ({"days": 0}, "days"),
    ({"start_volume": 5000}, "target_volume"),
    ({"curve": "custom"}, "schedule"),
    ({"curve": "custom", "schedule": [1] * 29 + [0]}, "schedule.29"),
    ({"thresholds": {"complaint": {"hold": 2}}}, "thresholds.complaint.hold"),
    ({"shares": {"gmail": 1.0}}, "shares.yahoo"),
    ({"sending_hours": [22, 6]}, "sending_hours"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"timezone": "../../etc/passwd"}, "timezone"),
    ({"warmup": True}, "warmup"),
])
def test_it_names_the_bad_field_of_a_plan(data, field):
    with pytest.raises(WarmingError) as caught:
        PlanSettings.from_dict(data)
    assert caught.value.field == field


# caps by group

def test_it_splits_day_ones_volume_between_the_groups_exactly():
    caps = group_caps(PlanSettings(), {})
    assert caps == {"gmail": 20, "yahoo": 8, "microsoft": 12, "other": 10}
    assert total_cap(caps) == 50


def test_it_caps_each_group_by_its_share_of_the_volume_at_its_own_level():
    states = {**at(30), "yahoo": RampState(5, "held"), "microsoft": RampState(9, "paused")}
    caps = group_caps(PlanSettings(), states)
    assert caps == {"gmail": 1200, "yahoo": 13, "microsoft": 0, "other": 600}  # yahoo: 0.15 * 88 = 13.2


def test_it_lifts_the_plans_cap_once_any_group_has_none():
    caps = group_caps(PlanSettings(), {**at(30), "gmail": RampState(30, "completed")})
    assert caps["gmail"] is None and caps["yahoo"] == 450
    assert total_cap(caps) is None


# the daily step

def test_it_holds_only_the_group_with_the_bad_day():
    states, adjustments = close_day(PlanSettings(), at(5), {**everyone(CLEAN), "yahoo": SPIKE}, 5)
    assert states["yahoo"] == RampState(5, "held")
    assert {states[g] for g in ("gmail", "microsoft", "other")} == {RampState(6, "warming")}
    assert list(adjustments) == ["yahoo"]
    assert adjustments["yahoo"].reason == "bounce rate 7.5% passed the hold threshold 5.0%"


def test_it_judges_each_plan_by_its_own_thresholds():
    lenient = PlanSettings(thresholds=Thresholds(bounce=Levels(0.08, 0.1, 0.2)))
    states, adjustments = close_day(lenient, at(5), everyone(SPIKE), 5)
    assert states == at(6)
    assert adjustments == {}


def test_it_holds_a_group_that_sent_nothing():
    states, adjustments = close_day(PlanSettings(), at(3), {"gmail": CLEAN}, 3)
    assert states["gmail"] == RampState(4)
    assert states["other"] == RampState(3, "held")
    assert "nothing was sent" in adjustments["other"].reason


def test_it_starts_groups_without_a_stored_state_at_day_one():
    states, _ = close_day(PlanSettings(), {}, everyone(CLEAN), 1)
    assert states == at(2)


def test_it_leaves_a_group_with_no_share_alone_and_out_of_the_plans_status():
    settings = PlanSettings(shares={"gmail": 0.5, "yahoo": 0.0, "microsoft": 0.5, "other": 0.0})
    states, adjustments = close_day(settings, at(30), everyone(Traffic()) | {"gmail": CLEAN, "microsoft": CLEAN}, 30)
    assert states["yahoo"] == RampState(30) and "yahoo" not in adjustments
    assert plan_status(settings, states) == "completed"


# one status for the plan

@pytest.mark.parametrize("statuses, expected", [
    (("warming", "warming", "warming", "warming"), "warming"),
    (("held", "warming", "completed", "warming"), "held"),
    (("held", "paused", "warming", "warming"), "paused"),
    (("completed", "completed", "completed", "completed"), "completed"),
    (("completed", "warming", "completed", "completed"), "warming"),
])
def test_it_reports_the_plan_by_its_most_urgent_group(statuses, expected):
    states = {group: RampState(10, status) for group, status in zip(GROUPS, statuses)}
    assert plan_status(PlanSettings(), states) == expected
