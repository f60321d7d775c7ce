"""Spreading a day's cap evenly over the local sending hours, with unused allowance carried to later hours."""
from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from warming.errors import ScheduleError
from warming.spread import allowance, check_sending_hours, next_send_at


def just_before(moment: time) -> time:
    return (datetime.combine(datetime(2025, 1, 6), moment) - timedelta(microseconds=1)).time()


# allowance across the default 08:00-20:00 window

def test_it_allows_nothing_before_the_window_opens():
    assert allowance(3000, time(0, 0)) == 0
    assert allowance(3000, time(7, 59, 59, 999999)) == 0


def test_it_allows_the_first_send_as_the_window_opens_rather_than_a_slot_later():
    assert allowance(3000, time(8, 0)) == 1


def test_it_releases_the_cap_at_an_even_pace_through_the_window():
    assert allowance(3000, time(9, 0)) == 251  # 3,000 / 12 hours = 250 an hour, plus the one begun at 09:00
    assert allowance(3000, time(14, 0)) == 1501
    assert allowance(1200, time(11, 30)) == 351


def test_it_allows_the_whole_cap_from_the_end_of_the_window_until_midnight():
    assert allowance(3000, just_before(time(20, 0))) == 3000
    assert allowance(3000, time(20, 0)) == 3000
    assert allowance(3000, time(23, 59)) == 3000


def test_it_carries_allowance_nobody_used_into_later_hours():
    # The allowance is cumulative, so at noon the whole morning's share is there to
    # send; the send path takes allowance minus what was reserved (the carry-over
    # through real reservations is tests/integration/test_warming.py's spreading test).
    assert allowance(3000, time(12, 0)) == 1001


def test_it_never_takes_allowance_back_as_the_day_goes_on():
    previous = 0
    for minute in range(0, 24 * 60, 7):
        current = allowance(88, time(minute // 60, minute % 60))
        assert previous <= current <= 88
        previous = current


def test_it_allows_nothing_on_a_paused_days_cap_of_zero():
    assert allowance(0, time(12, 0)) == 0


def test_it_spreads_a_cap_smaller_than_the_hours_over_the_whole_window():
    assert [allowance(3, time(h)) for h in (8, 11, 12, 15, 16, 19)] == [1, 1, 2, 2, 3, 3]


def test_it_reads_custom_sending_hours():
    assert allowance(100, time(7), (6, 10)) == 26
    assert allowance(100, time(5, 59), (6, 10)) == 0


def test_it_reaches_the_full_cap_in_a_window_that_runs_to_midnight():
    assert allowance(7, time(23, 59, 59, 999999), (0, 24)) == 7


def test_it_refuses_a_negative_cap():
    with pytest.raises(ValueError):
        allowance(-1, time(9))


# when the next send may go

def test_it_says_when_each_send_becomes_allowed():
    assert next_send_at(3000, 0) == time(8, 0)
    assert next_send_at(3000, 1) == time(8, 0, 14, 400000)
    assert next_send_at(50, 25) == time(14, 0)


@pytest.mark.parametrize("cap", [1, 3, 7, 88, 3000, 12_345])
def test_it_agrees_with_the_allowance_to_the_microsecond(cap):
    for used in {u for u in (0, 1, cap // 3, cap // 2, cap - 1) if u < cap}:
        opens = next_send_at(cap, used)
        assert allowance(cap, opens) == used + 1
        if opens != time(8, 0):
            assert allowance(cap, just_before(opens)) == used


def test_it_has_no_next_send_once_the_days_cap_is_spent():
    assert next_send_at(88, 88) is None
    assert next_send_at(0, 0) is None


# sending hours

@pytest.mark.parametrize("hours", [(20, 8), (9, 9), (-1, 8), (8, 25), (8.5, 20), ("8", "20"), (8,), "8-20", None])
def test_it_names_the_sending_hours_when_they_are_not_a_window_within_one_day(hours):
    with pytest.raises(ScheduleError) as caught:
        check_sending_hours(hours)
    assert caught.value.field == "sending_hours"


def test_it_accepts_a_list_of_hours_from_json():
    assert check_sending_hours([0, 24]) == (0, 24)
