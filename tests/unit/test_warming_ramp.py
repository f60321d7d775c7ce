"""The warming state machine: advancing on good days, holding, stepping back and pausing on bad ones,
resuming on recovery. Days are judged from real traffic, as the daily task will."""
from __future__ import annotations

import pytest

from warming.health import Traffic, Verdict, judge
from warming.ramp import Adjustment, RampState, cap_for, next_day, resume
from warming.schedule import daily_volumes

VOLUMES = daily_volumes()  # the default plan: 50 -> 3,000 over 30 days
DAYS = len(VOLUMES)
CLEAN = Traffic(sent=1000, bounced=10, complained=0, deferred=20)
BOUNCE_SPIKE = Traffic(sent=1000, bounced=70)  # 7%: past hold, under step back
BIGGER_BOUNCE_SPIKE = Traffic(sent=1000, bounced=130)  # 13%: past step back, under pause
COMPLAINT_STORM = Traffic(sent=1000, complained=8)  # 0.8%: past pause
ADVANCE = Verdict("advance", "clean")


def live(days: list[Traffic], state: RampState | None = None) -> tuple[RampState, list[Adjustment], list[int | None]]:
    """Runs the daily task over ``days`` of traffic: the last state, the adjustments, each next day's cap."""
    state = state or RampState()
    adjustments, caps = [], []
    for day, traffic in enumerate(days, start=1):
        state, adjustment = next_day(state, judge(traffic), DAYS, day)
        if adjustment is not None:
            adjustments.append(adjustment)
        caps.append(cap_for(VOLUMES, state))
    return state, adjustments, caps


# the plain climb

def test_it_starts_a_new_plan_at_day_ones_volume():
    assert cap_for(VOLUMES, RampState()) == 50


def test_it_climbs_one_level_a_day_on_good_health_without_recording_adjustments():
    state, adjustments, caps = live([CLEAN] * 4)
    assert state == RampState(level=5, status="warming")
    assert adjustments == []
    assert caps == VOLUMES[1:5]


def test_it_completes_after_a_good_last_day_and_lifts_the_cap():
    state, adjustments, caps = live([CLEAN] * DAYS)
    assert caps[-2] == 3000
    assert state.status == "completed"
    assert caps[-1] is None
    assert [(a.day, a.action) for a in adjustments] == [(30, "complete")]


def test_it_leaves_a_completed_plan_completed_whatever_happens():
    done = RampState(level=DAYS, status="completed")
    assert next_day(done, judge(COMPLAINT_STORM), DAYS, 31) == (done, None)


# the required scenario: a bounce spike on day 5

def test_it_holds_at_day_fives_volume_after_a_bounce_spike_on_day_five():
    state, adjustments, caps = live([CLEAN] * 4 + [BOUNCE_SPIKE])
    assert state == RampState(level=5, status="held")
    assert caps[-1] == VOLUMES[4] == 88
    assert adjustments == [Adjustment(5, 5, 5, "hold", "bounce rate 7.0% passed the hold threshold 5.0%")]


def test_it_steps_back_to_day_fours_volume_after_a_higher_spike_on_day_five():
    state, adjustments, caps = live([CLEAN] * 4 + [BIGGER_BOUNCE_SPIKE])
    assert state == RampState(level=4, status="held")
    assert caps[-1] == VOLUMES[3] == 76
    assert (adjustments[0].from_level, adjustments[0].to_level, adjustments[0].action) == (5, 4, "step_back")


def test_it_resumes_the_climb_above_the_held_volume_when_rates_recover():
    state, adjustments, caps = live([CLEAN] * 4 + [BOUNCE_SPIKE, CLEAN])
    assert state == RampState(level=6, status="warming")
    assert caps[-1] == VOLUMES[5] > caps[-2] == VOLUMES[4]
    assert adjustments[-1].action == "resume"
    assert adjustments[-1].reason.startswith("rates recovered: bounce 1.0%")


def test_it_keeps_holding_while_the_spike_lasts_and_records_each_day():
    _, adjustments, caps = live([CLEAN] * 4 + [BOUNCE_SPIKE] * 3 + [CLEAN])
    assert caps == [58, 66, 76, 88, 88, 88, 88, 101]
    assert [a.action for a in adjustments] == ["hold", "hold", "hold", "resume"]


def test_it_climbs_again_from_the_lower_level_after_a_step_back():
    state, _, caps = live([CLEAN] * 4 + [BIGGER_BOUNCE_SPIKE, CLEAN, CLEAN])
    assert caps[-3:] == [VOLUMES[3], VOLUMES[4], VOLUMES[5]]
    assert state == RampState(level=6, status="warming")


def test_it_never_steps_back_below_day_one():
    state, adjustment = next_day(RampState(level=1), judge(BIGGER_BOUNCE_SPIKE), DAYS, 1)
    assert state == RampState(level=1, status="held")
    assert (adjustment.from_level, adjustment.to_level) == (1, 1)


# pausing

def test_it_pauses_and_stops_sending_when_a_rate_passes_the_pause_level():
    state, adjustments, caps = live([CLEAN] * 9 + [COMPLAINT_STORM])
    assert state == RampState(level=10, status="paused")
    assert caps[-1] == 0
    assert adjustments[-1].action == "pause"
    assert "complaint rate 0.80% passed the pause threshold 0.50%" == adjustments[-1].reason


def test_it_stays_paused_on_good_days_until_an_operator_resumes_it():
    paused = RampState(level=10, status="paused")
    assert next_day(paused, judge(CLEAN), DAYS, 11) == (paused, None)


def test_it_resumes_a_pause_one_level_lower_and_records_who_resumed_it():
    state, adjustment = resume(RampState(level=10, status="paused"), 12, "resumed by Alice after a list cleanup")
    assert state == RampState(level=9, status="warming")
    assert adjustment == Adjustment(12, 10, 9, "resume", "resumed by Alice after a list cleanup")
    assert cap_for(VOLUMES, state) == VOLUMES[8]


def test_it_changes_nothing_when_resuming_a_plan_that_is_not_paused():
    held = RampState(level=4, status="held")
    assert resume(held, 7) == (held, None)


# per mailbox-provider group

def test_it_holds_only_the_group_that_had_a_bad_day():
    states = {group: RampState(level=5) for group in ("gmail", "yahoo", "microsoft", "other")}
    traffic = {"gmail": BOUNCE_SPIKE, "yahoo": CLEAN, "microsoft": CLEAN, "other": CLEAN}
    moved = {group: next_day(states[group], judge(traffic[group]), DAYS, 5)[0] for group in states}
    assert moved["gmail"] == RampState(level=5, status="held")
    assert {moved[g] for g in ("yahoo", "microsoft", "other")} == {RampState(level=6, status="warming")}
    assert cap_for(VOLUMES, moved["gmail"]) < cap_for(VOLUMES, moved["yahoo"])


# edges

def test_it_caps_a_group_left_past_the_end_of_a_shortened_plan_at_the_last_volume_and_completes_it_next():
    beyond = RampState(level=40, status="warming")
    assert cap_for(VOLUMES, beyond) == 3000
    state, adjustment = next_day(beyond, ADVANCE, DAYS, 41)
    assert state.status == "completed" and adjustment.action == "complete"


def test_it_completes_a_one_day_plan_after_its_only_good_day():
    state, _ = next_day(RampState(), ADVANCE, 1, 1)
    assert state == RampState(level=1, status="completed")


@pytest.mark.parametrize("level, status", [(0, "warming"), (-1, "held"), (1.5, "warming"), (1, "stopped")])
def test_it_refuses_a_state_that_cannot_exist(level, status):
    with pytest.raises(ValueError):
        RampState(level=level, status=status)


def test_it_refuses_a_verdict_it_does_not_know():
    with pytest.raises(ValueError):
        next_day(RampState(), Verdict("skip", "?"), DAYS, 1)
