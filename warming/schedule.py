"""The planned daily volumes of a warming plan, before health adjusts anything.

A geometric curve is the default because mailbox providers judge a new IP by how
its volume grows relative to what they have already seen: growing by the same
factor each day (about +15% for 50 -> 3,000 over 30 days) keeps every step equally
small, where a linear ramp makes the first days' jumps the biggest (+204% from day 1
to day 2 of the same plan), just when the IP has no reputation at all.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

from core.validators import is_int
from warming.errors import ScheduleError

CURVES = ("geometric", "linear", "custom")
DEFAULT_DAYS = 30
DEFAULT_START_VOLUME = 50
DEFAULT_TARGET_VOLUME = 3000
MAX_DAYS = 365
MAX_VOLUME = 10_000_000


def daily_volumes(days: int = DEFAULT_DAYS, start_volume: int = DEFAULT_START_VOLUME,
                  target_volume: int = DEFAULT_TARGET_VOLUME, curve: str = "geometric",
                  table: Sequence[int] | None = None) -> list[int]:
    """The volume of each day of the plan; index 0 is day 1.

    Geometric and linear curves start at exactly ``start_volume``, end at exactly
    ``target_volume`` and never decrease. ``custom`` takes ``table`` as the
    schedule (one positive volume per day, any shape) and ignores the two volumes.
    """
    _check_days(days)
    if curve not in CURVES:
        raise ScheduleError("curve", "Must be one of: " + ", ".join(CURVES) + ".")
    if curve == "custom":
        return _check_table(table, days)
    if table is not None:
        raise ScheduleError("schedule", "A day-by-day table is only used with the custom curve.")
    _check_volumes(days, start_volume, target_volume)
    if days == 1:
        return [start_volume]
    last = days - 1
    if curve == "linear":
        exact = [start_volume + (target_volume - start_volume) * i / last for i in range(days)]
    else:
        ratio = target_volume / start_volume
        exact = [start_volume * ratio ** (i / last) for i in range(days)]
    # Half-up rounding is monotonic, so a non-decreasing curve stays non-decreasing;
    # the clamp and the pinned ends absorb float error at the two exact endpoints.
    volumes = [min(target_volume, max(start_volume, math.floor(v + 0.5))) for v in exact]
    volumes[0], volumes[-1] = start_volume, target_volume
    return volumes


def day_number(start_date: date, today: date) -> int:
    """Which calendar day of the plan ``today`` is (the start date is day 1; earlier is 0 or less).

    This counts calendar days; the ramp's ``level`` is where in the schedule the plan
    stands, which falls behind the day number whenever the plan holds or steps back.
    """
    return (today - start_date).days + 1


def format_table(volumes: Sequence[int]) -> str:
    """A Markdown table of day -> volume, with the daily growth, for a README or a report."""
    lines = ["| Day | Volume | Change |", "| ---: | ---: | ---: |"]
    for index, volume in enumerate(volumes):
        change = "" if index == 0 else f"{(volume / volumes[index - 1] - 1) * 100:+.1f}%"
        lines.append(f"| {index + 1} | {volume:,} | {change} |")
    return "\n".join(lines) + "\n"


def _check_days(days: Any) -> None:
    if not is_int(days) or not 1 <= days <= MAX_DAYS:
        raise ScheduleError("days", f"Must be an integer from 1 to {MAX_DAYS}.")


def _check_volumes(days: int, start_volume: Any, target_volume: Any) -> None:
    if not is_int(start_volume) or not 1 <= start_volume <= MAX_VOLUME:
        raise ScheduleError("start_volume", f"Must be an integer from 1 to {MAX_VOLUME:,}.")
    if not is_int(target_volume) or not 1 <= target_volume <= MAX_VOLUME:
        raise ScheduleError("target_volume", f"Must be an integer from 1 to {MAX_VOLUME:,}.")
    if target_volume < start_volume:
        raise ScheduleError("target_volume", "Must be at least start_volume: a warming plan only climbs.")
    if days == 1 and target_volume != start_volume:
        raise ScheduleError("target_volume", "A one-day plan has no room to climb: it must equal start_volume.")


def _check_table(table: Any, days: int) -> list[int]:
    if table is None:
        raise ScheduleError("schedule", "The custom curve needs a day-by-day table.")
    if isinstance(table, (str, bytes)) or not isinstance(table, Sequence):
        raise ScheduleError("schedule", "Must be a list of daily volumes.")
    if len(table) != days:
        raise ScheduleError("schedule", f"Has {len(table)} days; the plan has {days}.")
    for index, volume in enumerate(table):
        if not is_int(volume) or not 1 <= volume <= MAX_VOLUME:
            raise ScheduleError(f"schedule.{index}", f"Must be an integer from 1 to {MAX_VOLUME:,}.")
    return list(table)
