"""When a ``send_at: best_time`` email goes out (sequencing.best_time.best_time) and
how a ``score`` condition reads a subscriber's scores: pure functions, time given."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sequencing.best_time import best_time
from sequencing.conditions import Facts, evaluate

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
MONDAY_9_UTC = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 04:00 in New York


def test_it_waits_for_the_next_learned_hour_in_the_subscribers_zone():
    assert best_time(MONDAY_9_UTC, 14, None, None, NY) == datetime(2026, 3, 2, 19, 0, tzinfo=UTC)


def test_it_sends_now_when_now_is_within_the_learned_hour():
    now = datetime(2026, 3, 2, 19, 40, tzinfo=UTC)  # 14:40 in New York
    assert best_time(now, 14, None, None, NY) == now


def test_an_hour_already_past_today_is_tomorrows():
    now = datetime(2026, 3, 2, 20, 5, tzinfo=UTC)  # 15:05 in New York
    assert best_time(now, 14, None, None, NY) == datetime(2026, 3, 3, 19, 0, tzinfo=UTC)


def test_a_half_hour_zone_starts_its_hours_at_half_past_utc():
    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+05:30
    assert best_time(MONDAY_9_UTC, 20, None, None, kolkata) == datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def test_outside_the_window_the_nearest_allowed_hour_wins():
    window = {"start": "09:00", "end": "17:00"}
    assert best_time(MONDAY_9_UTC, 22, window, None, NY) == datetime(2026, 3, 2, 21, 0, tzinfo=UTC)  # 16:00
    assert best_time(MONDAY_9_UTC, 5, window, None, NY) == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 09:00


def test_a_quiet_day_moves_it_to_the_next_allowed_moment_within_a_day():
    # Monday is quiet: the learned 14:00 falls on it, so the closest allowed hour is Tuesday's earliest
    # ones before 04:00 (the 24 hours end there): 03:00 Tuesday is 11 hours from 14:00, 00:00 is 10.
    at = best_time(MONDAY_9_UTC, 14, None, ["2026-03-02"], NY)
    assert at == datetime(2026, 3, 3, 5, 0, tzinfo=UTC)  # Tuesday 00:00 in New York


def test_it_never_waits_24_hours_or_more_whatever_the_hour_and_window():
    windows = [None, {"start": "09:00", "end": "17:00"}, {"start": "22:00", "end": "02:00"}]
    for minute in (0, 17, 59):
        now = MONDAY_9_UTC + timedelta(minutes=minute)
        for hour in range(24):
            for window in windows:
                at = best_time(now, hour, window, None, NY)
                assert now <= at < now + timedelta(hours=24), (hour, window, at)


def test_with_no_allowed_moment_ahead_it_leaves_the_hold_to_the_window():
    every_day_quiet = [(MONDAY_9_UTC + timedelta(days=d)).date().isoformat() for d in range(-1, 3)]
    assert best_time(MONDAY_9_UTC, 14, None, every_day_quiet, NY) == MONDAY_9_UTC


def _facts(scores: dict) -> Facts:
    return Facts(tags=[], attributes={}, messages_by_step={}, scores=scores)


def test_a_score_condition_compares_the_score_and_is_false_without_one():
    condition = {"type": "score", "score": "churn_risk", "op": "gt", "value": 0.7}
    assert evaluate(condition, 0, _facts({"churn_risk": 0.71}), MONDAY_9_UTC) is True
    assert evaluate(condition, 0, _facts({"churn_risk": 0.7}), MONDAY_9_UTC) is False
    assert evaluate(condition, 0, _facts({"churn_risk": None}), MONDAY_9_UTC) is False
    assert evaluate(condition, 0, _facts({}), MONDAY_9_UTC) is False
    lte = {"type": "score", "score": "engagement", "op": "lte", "value": 0.3}
    assert evaluate(lte, 0, _facts({"engagement": 0.3}), MONDAY_9_UTC) is True
    assert evaluate(lte, 0, _facts({}), MONDAY_9_UTC) is False
