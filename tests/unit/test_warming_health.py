"""Judging a group's recent traffic against its thresholds: the worst rate wins, small samples only hold."""
from __future__ import annotations

import math

import pytest

from warming.errors import ThresholdsError
from warming.health import Levels, Thresholds, Traffic, judge


def thresholds_error_field(data) -> str:
    with pytest.raises(ThresholdsError) as caught:
        Thresholds.from_dict(data)
    return caught.value.field


# traffic

def test_it_computes_each_rate_over_the_mail_sent():
    traffic = Traffic(sent=2000, bounced=50, complained=3, deferred=300)
    assert traffic.bounce_rate == 0.025
    assert traffic.complaint_rate == 0.0015
    assert traffic.deferral_rate == 0.15


def test_it_reports_zero_rates_when_nothing_was_sent():
    assert Traffic().bounce_rate == Traffic().complaint_rate == Traffic().deferral_rate == 0.0


def test_it_sums_days_of_traffic_into_one_window():
    assert Traffic(100, 1, 0, 5) + Traffic(300, 2, 1, 0) == Traffic(400, 3, 1, 5)


@pytest.mark.parametrize("counts", [(-1, 0, 0, 0), (10, -1, 0, 0), (10, 0, 0.5, 0), (10, 0, 0, True)])
def test_it_refuses_counts_that_are_not_whole_non_negative_numbers(counts):
    with pytest.raises(ValueError):
        Traffic(*counts)


# the three levels of each rate

def test_it_advances_when_every_rate_is_under_its_hold_threshold():
    verdict = judge(Traffic(sent=1000, bounced=20, complained=0, deferred=50))
    assert verdict.action == "advance"
    assert verdict.reason == "bounce 2.0%, complaint 0.00%, deferral 5.0% of 1,000 sent: all under the hold thresholds"


def test_it_advances_at_exactly_the_hold_threshold_because_a_rate_must_pass_it():
    assert judge(Traffic(sent=1000, bounced=50)).action == "advance"


def test_it_holds_when_bounces_pass_five_percent_and_says_so():
    verdict = judge(Traffic(sent=1000, bounced=70))
    assert verdict.action == "hold"
    assert verdict.reason == "bounce rate 7.0% passed the hold threshold 5.0%"


def test_it_steps_back_when_bounces_pass_ten_percent():
    verdict = judge(Traffic(sent=1000, bounced=120))
    assert verdict.action == "step_back"
    assert verdict.reason == "bounce rate 12.0% passed the step back threshold 10.0%"


def test_it_pauses_when_bounces_pass_twenty_percent():
    assert judge(Traffic(sent=1000, bounced=201)).action == "pause"


@pytest.mark.parametrize("complained, action", [(1, "advance"), (2, "hold"), (4, "step_back"), (6, "pause")])
def test_it_judges_complaints_at_a_tenth_three_tenths_and_half_a_percent(complained, action):
    assert judge(Traffic(sent=1000, complained=complained)).action == action


@pytest.mark.parametrize("deferred, action", [(100, "advance"), (101, "hold"), (201, "step_back"), (501, "pause")])
def test_it_judges_deferrals_at_ten_twenty_and_fifty_percent(deferred, action):
    assert judge(Traffic(sent=1000, deferred=deferred)).action == action


def test_it_writes_complaint_rates_with_two_decimals_so_a_tenth_of_a_percent_shows():
    assert judge(Traffic(sent=1000, complained=2)).reason == "complaint rate 0.20% passed the hold threshold 0.10%"


# the worst rate wins

def test_it_lets_the_worst_rate_decide_and_names_only_the_rates_that_called_for_it():
    verdict = judge(Traffic(sent=1000, bounced=70, complained=4))
    assert verdict.action == "step_back"
    assert verdict.reason == "complaint rate 0.40% passed the step back threshold 0.30%"


def test_it_names_every_rate_that_reached_the_worst_level():
    verdict = judge(Traffic(sent=1000, bounced=70, deferred=150))
    assert verdict.action == "hold"
    assert "bounce rate 7.0%" in verdict.reason and "deferral rate 15.0%" in verdict.reason


# small and empty samples

def test_it_holds_a_day_with_no_sends_because_nothing_was_earned():
    verdict = judge(Traffic())
    assert verdict.action == "hold"
    assert "nothing was sent" in verdict.reason


def test_it_only_holds_on_a_small_sample_even_when_a_rate_passes_the_pause_level():
    verdict = judge(Traffic(sent=50, complained=3))
    assert verdict.action == "hold"
    assert verdict.reason == ("complaint rate 6.0% passed the pause threshold 0.50%, but 50 sent is fewer than "
                              "the 100 needed to pause: holding")


def test_it_still_holds_a_small_sample_that_passes_a_hold_level():
    assert judge(Traffic(sent=50, bounced=3)).action == "hold"


def test_it_advances_a_small_sample_with_clean_rates():
    assert judge(Traffic(sent=50, bounced=1)).action == "advance"


def test_it_judges_a_small_sample_fully_once_min_sample_is_lowered():
    assert judge(Traffic(sent=50, complained=3), Thresholds(min_sample=50)).action == "pause"


# configurable thresholds

def test_it_uses_the_plans_own_thresholds():
    strict = Thresholds(bounce=Levels(hold=0.01, step_back=0.02, pause=0.5))
    assert judge(Traffic(sent=1000, bounced=30), strict).action == "step_back"


def test_it_treats_a_zero_threshold_as_any_at_all_and_one_as_never():
    zero_tolerance = Thresholds(complaint=Levels(hold=0.0, step_back=1.0, pause=1.0))
    assert judge(Traffic(sent=10_000, complained=1), zero_tolerance).action == "hold"
    assert judge(Traffic(sent=100, complained=100), zero_tolerance).action == "hold"


def test_it_keeps_the_defaults_of_every_level_left_out_of_the_settings():
    thresholds = Thresholds.from_dict({"bounce": {"hold": 0.03}, "min_sample": 20})
    assert thresholds.bounce == Levels(hold=0.03, step_back=0.10, pause=0.20)
    assert thresholds.complaint == Thresholds().complaint
    assert thresholds.min_sample == 20


def test_it_round_trips_thresholds_through_their_dict():
    thresholds = Thresholds(deferral=Levels(0.2, 0.3, 0.4), min_sample=7)
    assert Thresholds.from_dict(thresholds.as_dict()) == thresholds


@pytest.mark.parametrize("data, field", [
    ({"bounce": {"hold": 1.5}}, "thresholds.bounce.hold"),
    ({"bounce": {"hold": -0.01}}, "thresholds.bounce.hold"),
    ({"complaint": {"pause": math.nan}}, "thresholds.complaint.pause"),
    ({"deferral": {"step_back": True}}, "thresholds.deferral.step_back"),
    ({"complaint": {"step_back": 0.0005}}, "thresholds.complaint.step_back"),
    ({"bounce": {"pause": 0.08}}, "thresholds.bounce.pause"),
    ({"bounce": {"warn": 0.01}}, "thresholds.bounce.warn"),
    ({"bounce": [0.05, 0.1, 0.2]}, "thresholds.bounce"),
    ({"spam": {"hold": 0.01}}, "thresholds.spam"),
    ({"min_sample": -1}, "thresholds.min_sample"),
    ({"min_sample": 10.5}, "thresholds.min_sample"),
    ("strict", "thresholds"),
])
def test_it_names_the_threshold_that_is_out_of_range_or_out_of_order(data, field):
    assert thresholds_error_field(data) == field


def test_it_validates_thresholds_built_directly_too():
    with pytest.raises(ThresholdsError) as caught:
        Thresholds(bounce=Levels(hold=0.2, step_back=0.1, pause=0.3))
    assert caught.value.field == "thresholds.bounce.step_back"
