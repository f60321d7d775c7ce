"""When things are due: delays, send windows and quiet days, in the subscriber's
timezone (falling back to the sequence's, then UTC).

Pure functions over a ``now``; nothing here reads a clock.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from core.zones import zone as zone  # re-exported: the engine's callers ask timing for zones

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_ABBREVIATIONS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def delay_until(now: datetime, config: dict[str, Any], tz: ZoneInfo) -> datetime:
    """The moment a delay step started at ``now`` ends."""
    if "seconds" in config:
        return now + timedelta(seconds=float(config["seconds"]))
    if "until" in config:
        until = config["until"]
        weekday = WEEKDAYS.index(str(until["weekday"]).lower())
        at = _hhmm(until.get("time", "09:00"))
        local = now.astimezone(tz)
        days_ahead = (weekday - local.weekday()) % 7
        candidate = datetime.combine(local.date() + timedelta(days=days_ahead), at, tzinfo=tz)
        if candidate <= local:
            candidate += timedelta(days=7)
        return candidate.astimezone(timezone.utc)
    span = timedelta(
        days=float(config.get("days", 0)), hours=float(config.get("hours", 0)), minutes=float(config.get("minutes", 0))
    )
    return now + span


def _day_allowed(day: date, days: list[str] | None, quiet_days: set[str]) -> bool:
    if day.isoformat() in quiet_days:
        return False
    return not days or DAY_ABBREVIATIONS[day.weekday()] in [d.lower()[:3] for d in days]


def next_send_opening(
    now: datetime, window: dict[str, Any] | None, quiet_days: list[str] | None, tz: ZoneInfo
) -> datetime:
    """``now`` if an email may go out now, else the start of the next allowed slot.

    A window is ``{"start": "09:00", "end": "17:00", "days": ["mon", ...]}`` in local
    time; an ``end`` before ``start`` wraps past midnight. Quiet days are local dates.
    """
    quiet = set(quiet_days or [])
    if not window and not quiet:
        return now
    window = window or {}
    start = _hhmm(window.get("start", "00:00"))
    end = _hhmm(window.get("end", "23:59"))
    days = window.get("days")
    local = now.astimezone(tz)
    if end <= start and local.time() < end and local.date().isoformat() not in quiet:
        # the small hours of a wrapping window belong to the one that opened yesterday,
        # so the days rule is judged on yesterday (quiet days stay today's local date)
        if _day_allowed(local.date() - timedelta(days=1), days, quiet):
            return now
    for offset in range(0, 370):
        day = local.date() + timedelta(days=offset)
        if not _day_allowed(day, days, quiet):
            continue
        opens = datetime.combine(day, start, tzinfo=tz)
        closes = datetime.combine(day, end, tzinfo=tz)
        if closes <= opens:
            closes += timedelta(days=1)
        if offset == 0 and local >= closes:
            continue
        if local >= opens:
            return now
        return opens.astimezone(timezone.utc)
    return now  # no allowed day in a year: a misconfiguration must not freeze mail forever
