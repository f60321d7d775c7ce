"""When a broadcast's member is due at a local time or learned hour: pure functions
over a ``now`` (broadcasts.send_times)."""
from __future__ import annotations

from datetime import datetime, timezone

from broadcasts.send_times import learned_moment, local_moment

NOW = datetime(2026, 3, 28, 8, 30, tzinfo=timezone.utc)  # a Saturday, the eve of Europe's clock change


def test_a_local_time_still_ahead_today_is_today():
    assert local_moment(NOW, "09:00", "Europe/London") == datetime(2026, 3, 28, 9, 0, tzinfo=timezone.utc)


def test_a_local_time_already_past_is_tomorrows():
    # 09:00 in Paris was 08:00 UTC: passed, so tomorrow's, which is summer time.
    assert local_moment(NOW, "09:00", "Europe/Paris") == datetime(2026, 3, 29, 7, 0, tzinfo=timezone.utc)


def test_the_very_minute_is_now():
    assert local_moment(NOW, "08:30", None) == NOW


def test_a_time_the_clock_change_skips_is_read_as_the_hour_after():
    # 02:30 does not exist in Paris on 2026-03-29 (02:00 -> 03:00): zoneinfo reads it
    # with the offset before the change, which is 03:30 summer time.
    at = local_moment(datetime(2026, 3, 28, 23, 0, tzinfo=timezone.utc), "02:30", "Europe/Paris")
    assert at == datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)


def test_an_unknown_zone_is_utc():
    assert local_moment(NOW, "10:00", "Mars/Olympus") == datetime(2026, 3, 28, 10, 0, tzinfo=timezone.utc)


def test_the_learned_hour_is_the_start_of_that_local_hour_within_a_day():
    assert learned_moment(NOW, 20, "Asia/Tokyo") == datetime(2026, 3, 28, 11, 0, tzinfo=timezone.utc)
    assert learned_moment(NOW, 17, "Asia/Tokyo") == NOW, "it is that hour there now"
