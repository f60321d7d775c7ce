"""When things are due: delays, send windows, quiet days and timezones. Pure functions over a ``now``."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sequencing.timing import delay_until, next_send_opening, zone

UTC = zone("UTC")
NEW_YORK = zone("America/New_York")
PARIS = zone("Europe/Paris")
TOKYO = zone("Asia/Tokyo")

NINE_TO_FIVE = {"start": "09:00", "end": "17:00"}
OVERNIGHT = {"start": "22:00", "end": "06:00"}


def at(text: str) -> datetime:
    """An aware UTC moment from 'YYYY-MM-DD HH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def monday_at_nine(now: datetime, tz=UTC) -> datetime:
    return delay_until(now, {"until": {"weekday": "monday", "time": "09:00"}}, tz)


# delay_until: fixed spans

def test_it_delays_by_plain_seconds():
    now = at("2025-01-06 10:00")
    assert delay_until(now, {"seconds": 90}, UTC) == now + timedelta(seconds=90)


def test_it_accepts_fractional_seconds():
    now = at("2025-01-06 10:00")
    assert delay_until(now, {"seconds": 1.5}, UTC) == now + timedelta(milliseconds=1500)


def test_it_sums_days_hours_and_minutes():
    now = at("2025-01-06 10:00")
    assert delay_until(now, {"days": 1, "hours": 2, "minutes": 3}, UTC) == at("2025-01-07 12:03")


def test_it_treats_missing_span_parts_as_zero():
    now = at("2025-01-06 10:00")
    assert delay_until(now, {"hours": 5}, UTC) == at("2025-01-06 15:00")


def test_it_keeps_a_span_in_elapsed_time_rather_than_local_wall_time_across_dst():
    # one day from Saturday noon EST is 24 real hours later, i.e. 13:00 EDT on the Sunday of the change
    now = at("2025-03-08 17:00")
    assert delay_until(now, {"days": 1}, NEW_YORK) == at("2025-03-09 17:00")


# delay_until: "until next <weekday> at HH:MM"

def test_it_waits_until_the_same_monday_when_started_before_nine():
    assert monday_at_nine(at("2025-01-06 08:59")) == at("2025-01-06 09:00")


def test_it_waits_a_whole_week_when_started_at_exactly_nine_on_monday():
    assert monday_at_nine(at("2025-01-06 09:00")) == at("2025-01-13 09:00")


def test_it_waits_until_next_week_when_started_after_nine_on_monday():
    assert monday_at_nine(at("2025-01-06 09:01")) == at("2025-01-13 09:00")


def test_it_waits_until_the_next_day_when_started_on_a_sunday():
    assert monday_at_nine(at("2025-01-05 20:00")) == at("2025-01-06 09:00")


def test_it_waits_until_the_right_weekday_later_in_the_week():
    config = {"until": {"weekday": "friday", "time": "14:30"}}
    assert delay_until(at("2025-01-06 10:00"), config, UTC) == at("2025-01-10 14:30")


def test_it_reads_the_weekday_case_insensitively_and_defaults_to_nine():
    assert delay_until(at("2025-01-06 08:00"), {"until": {"weekday": "Monday"}}, UTC) == at("2025-01-06 09:00")


def test_it_returns_an_aware_utc_moment():
    result = monday_at_nine(at("2025-01-06 08:00"), NEW_YORK)
    assert result.utcoffset() == timedelta(0)


def test_it_converts_nine_local_in_new_york_to_utc():
    # 07:00 EST on a Monday: 09:00 EST is 14:00 UTC
    assert monday_at_nine(at("2025-01-06 12:00"), NEW_YORK) == at("2025-01-06 14:00")


def test_it_judges_the_weekday_in_local_time_not_utc():
    # Tuesday 02:00 UTC is still Monday 21:00 in New York, past 09:00, so the next Monday
    assert monday_at_nine(at("2025-01-07 02:00"), NEW_YORK) == at("2025-01-13 14:00")
    # Monday 23:00 UTC is already Tuesday 08:00 in Tokyo: next Monday 09:00 JST is 00:00 UTC
    assert monday_at_nine(at("2025-01-06 23:00"), TOKYO) == at("2025-01-13 00:00")


def test_it_keeps_nine_local_on_the_sunday_new_york_springs_forward():
    # 01:00 EST on 2025-03-09; clocks jump at 02:00, so 09:00 that day is EDT (UTC-4)
    config = {"until": {"weekday": "sunday", "time": "09:00"}}
    assert delay_until(at("2025-03-09 06:00"), config, NEW_YORK) == at("2025-03-09 13:00")


def test_it_keeps_nine_local_a_week_later_across_new_yorks_spring_change():
    # Monday 10:00 EST, past nine: the next Monday is after the change, 09:00 EDT
    assert monday_at_nine(at("2025-03-03 15:00"), NEW_YORK) == at("2025-03-10 13:00")


def test_it_keeps_nine_local_across_paris_falling_back_in_october():
    # Monday 10:00 CEST (UTC+2) -> the next Monday is after 2025-10-26, 09:00 CET (UTC+1)
    assert monday_at_nine(at("2025-10-20 08:00"), PARIS) == at("2025-10-27 08:00")
    # from the Saturday before the change as well
    assert monday_at_nine(at("2025-10-25 10:00"), PARIS) == at("2025-10-27 08:00")


def test_it_keeps_nine_local_on_the_sunday_paris_falls_back():
    config = {"until": {"weekday": "sunday", "time": "09:00"}}
    # Sunday 2025-10-26 01:00 CEST (before the 03:00 change); 09:00 that day is CET
    assert delay_until(at("2025-10-25 23:00"), config, PARIS) == at("2025-10-26 08:00")


# next_send_opening

def test_it_sends_now_without_a_window_or_quiet_days():
    now = at("2025-01-06 03:00")
    assert next_send_opening(now, None, None, UTC) is now
    assert next_send_opening(now, {}, [], UTC) is now


def test_it_sends_now_inside_the_window():
    now = at("2025-01-06 12:00")
    assert next_send_opening(now, NINE_TO_FIVE, None, UTC) == now


def test_it_sends_now_at_the_very_start_of_the_window():
    now = at("2025-01-06 09:00")
    assert next_send_opening(now, NINE_TO_FIVE, None, UTC) == now


def test_it_waits_for_todays_start_before_the_window():
    assert next_send_opening(at("2025-01-06 07:30"), NINE_TO_FIVE, None, UTC) == at("2025-01-06 09:00")


def test_it_waits_for_tomorrows_start_after_the_window():
    assert next_send_opening(at("2025-01-06 18:00"), NINE_TO_FIVE, None, UTC) == at("2025-01-07 09:00")


def test_it_treats_the_end_of_the_window_as_closed():
    assert next_send_opening(at("2025-01-06 17:00"), NINE_TO_FIVE, None, UTC) == at("2025-01-07 09:00")


def test_it_skips_to_the_next_allowed_weekday():
    weekdays = {**NINE_TO_FIVE, "days": ["mon", "tue", "wed", "thu", "fri"]}
    # Friday evening and Saturday morning both wait for Monday
    assert next_send_opening(at("2025-01-10 18:00"), weekdays, None, UTC) == at("2025-01-13 09:00")
    assert next_send_opening(at("2025-01-11 10:00"), weekdays, None, UTC) == at("2025-01-13 09:00")


def test_it_refuses_a_disallowed_day_even_within_the_hours():
    tuesdays = {**NINE_TO_FIVE, "days": ["tue"]}
    assert next_send_opening(at("2025-01-06 12:00"), tuesdays, None, UTC) == at("2025-01-07 09:00")


def test_it_accepts_full_day_names_in_any_case():
    mondays = {**NINE_TO_FIVE, "days": ["Monday"]}
    now = at("2025-01-06 12:00")
    assert next_send_opening(now, mondays, None, UTC) == now


def test_it_sends_now_in_a_wrapping_window_before_midnight():
    now = at("2025-01-06 23:00")
    assert next_send_opening(now, OVERNIGHT, None, UTC) == now


def test_it_sends_now_in_a_wrapping_window_after_midnight():
    now = at("2025-01-07 03:00")
    assert next_send_opening(now, OVERNIGHT, None, UTC) == now


def test_it_waits_for_tonights_start_outside_a_wrapping_window():
    assert next_send_opening(at("2025-01-06 12:00"), OVERNIGHT, None, UTC) == at("2025-01-06 22:00")
    assert next_send_opening(at("2025-01-06 06:00"), OVERNIGHT, None, UTC) == at("2025-01-06 22:00")


def test_it_lets_a_wrapping_window_run_past_midnight_into_a_day_not_listed():
    # the window opens on Friday; Saturday 03:00 is still Friday night's window
    fridays = {**OVERNIGHT, "days": ["fri"]}
    now = at("2025-01-11 03:00")
    assert next_send_opening(now, fridays, None, UTC) == now
    # Friday 03:00 belongs to Thursday night, which is not allowed: wait for Friday 22:00
    assert next_send_opening(at("2025-01-10 03:00"), fridays, None, UTC) == at("2025-01-10 22:00")
    # Saturday noon: the next Friday night
    assert next_send_opening(at("2025-01-11 12:00"), fridays, None, UTC) == at("2025-01-17 22:00")


def test_it_skips_a_quiet_day():
    now = at("2025-01-06 12:00")
    assert next_send_opening(now, NINE_TO_FIVE, ["2025-01-06"], UTC) == at("2025-01-07 09:00")
    assert next_send_opening(now, NINE_TO_FIVE, ["2025-01-06", "2025-01-07"], UTC) == at("2025-01-08 09:00")


def test_it_ignores_quiet_days_that_are_not_today():
    now = at("2025-01-06 12:00")
    assert next_send_opening(now, NINE_TO_FIVE, ["2025-01-05", "2025-01-07"], UTC) == now


def test_it_honours_quiet_days_without_a_window():
    # no window: the whole quiet date is closed, sending resumes at local midnight
    assert next_send_opening(at("2025-01-06 12:00"), None, ["2025-01-06"], UTC) == at("2025-01-07 00:00")


def test_it_reads_quiet_days_as_local_dates():
    # 03:00 UTC on the 6th is 22:00 on the 5th in New York: not the quiet date yet
    now = at("2025-01-06 03:00")
    assert next_send_opening(now, None, ["2025-01-06"], NEW_YORK) == now
    # ... and in UTC it is: midnight UTC on the 7th
    assert next_send_opening(now, None, ["2025-01-06"], UTC) == at("2025-01-07 00:00")


def test_it_does_not_send_after_midnight_on_a_quiet_date_from_the_night_before():
    # Friday night's window runs into Saturday, but Saturday is a quiet date;
    # Saturday night's window (which opens on the quiet date) is skipped too
    assert next_send_opening(at("2025-01-11 03:00"), OVERNIGHT, ["2025-01-11"], UTC) == at("2025-01-12 22:00")


def test_it_uses_the_subscribers_zone_for_the_window():
    now = at("2025-01-06 13:00")
    # 13:00 UTC: inside 09-17 in UTC
    assert next_send_opening(now, NINE_TO_FIVE, None, UTC) == now
    # 08:00 in New York: wait for 09:00 EST = 14:00 UTC
    assert next_send_opening(now, NINE_TO_FIVE, None, NEW_YORK) == at("2025-01-06 14:00")
    # 22:00 in Tokyo: wait for 09:00 JST tomorrow = 00:00 UTC
    assert next_send_opening(now, NINE_TO_FIVE, None, TOKYO) == at("2025-01-07 00:00")


def test_it_opens_the_window_at_local_time_across_a_dst_change():
    # Saturday 18:00 EST; the next start is Sunday 09:00 EDT after clocks spring forward
    assert next_send_opening(at("2025-03-08 23:00"), NINE_TO_FIVE, None, NEW_YORK) == at("2025-03-09 13:00")


def test_it_returns_now_rather_than_hang_when_no_day_is_ever_allowed():
    # a misconfigured window whose days match nothing must not freeze mail forever
    now = at("2025-01-06 03:00")
    assert next_send_opening(now, {**NINE_TO_FIVE, "days": ["never"]}, None, UTC) == now


def test_it_returns_now_rather_than_hang_when_every_day_for_a_year_is_quiet():
    now = at("2025-01-06 03:00")
    quiet = [(now.date() + timedelta(days=i)).isoformat() for i in range(400)]
    assert next_send_opening(now, NINE_TO_FIVE, quiet, UTC) == now


# zone

def test_it_picks_the_first_valid_zone():
    assert zone("Europe/Paris", "America/New_York").key == "Europe/Paris"


def test_it_falls_through_invalid_or_empty_names_to_the_next():
    assert zone(None, "", "Not/A_Zone", "America/New_York").key == "America/New_York"


def test_it_falls_through_a_malformed_name_that_zoneinfo_rejects_with_value_error():
    assert zone("../../etc/passwd", "/absolute", "Asia/Tokyo").key == "Asia/Tokyo"


def test_it_falls_back_to_utc_when_no_name_is_valid():
    assert zone("Not/A_Zone", None, "").key == "UTC"
    assert zone().key == "UTC"


def test_it_treats_a_window_starting_and_ending_at_the_same_time_as_open_all_day():
    window = {"start": "10:00", "end": "10:00"}
    for now in (at("2025-01-06 03:00"), at("2025-01-06 10:00"), at("2025-01-06 23:00")):
        assert next_send_opening(now, window, None, UTC) == now
