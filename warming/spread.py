"""Spreading a day's cap over the sending hours instead of bursting it at midnight.

Receivers throttle a new IP by how fast mail arrives as well as by how much, so
the day's cap is released at an even pace across the plan's local sending hours
(08:00 to 20:00 by default). The window is cut into ``cap`` equal slots and each
send becomes allowed at the start of its slot: a cap of 3,000 over twelve hours
releases one send every 14.4 seconds.

``allowance`` is cumulative, so whatever was not used stays available later the
same day (a queue that was empty at 09:00 may catch up at 10:00), and the whole cap
is available from the end of the window until local midnight. A window cannot
wrap past midnight, because a cap belongs to one local calendar day.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any

from core.validators import is_int
from warming.errors import ScheduleError

DEFAULT_SENDING_HOURS = (8, 20)
_MICROS_PER_HOUR = 3_600_000_000
_MIDNIGHT = datetime(2000, 1, 1)


def check_sending_hours(hours: Any) -> tuple[int, int]:
    """``(start, end)`` validated: whole local hours, 0 <= start < end <= 24."""
    if isinstance(hours, (str, bytes)) or not isinstance(hours, Sequence) or len(hours) != 2:
        raise ScheduleError("sending_hours", "Must be a pair of hours [start, end].")
    start, end = hours
    if not (is_int(start) and is_int(end) and 0 <= start < end <= 24):
        raise ScheduleError("sending_hours", "Must be whole hours with 0 <= start < end <= 24; "
                                             "a window cannot wrap past midnight.")
    return start, end


def allowance(cap: int, now_local: time, sending_hours: Sequence[int] = DEFAULT_SENDING_HOURS) -> int:
    """How many sends the day allows in total by ``now_local`` (the plan's local wall time).

    0 before the window opens, ``cap`` from its end, and in between one more for
    each slot that has begun. The caller may send ``allowance(...) - used`` now.
    """
    if cap < 0:
        raise ValueError(f"A cap cannot be negative: {cap}.")
    start, end = check_sending_hours(sending_hours)
    elapsed = _micros(now_local) - start * _MICROS_PER_HOUR
    window = (end - start) * _MICROS_PER_HOUR
    if cap == 0 or elapsed < 0:
        return 0
    if elapsed >= window:
        return cap
    return min(cap, cap * elapsed // window + 1)


def next_send_at(cap: int, used: int, sending_hours: Sequence[int] = DEFAULT_SENDING_HOURS) -> time | None:
    """The local time from which send number ``used + 1`` is allowed, or None when the
    day's cap is spent (the next chance is tomorrow's cap). Lets the send path defer
    a message to a moment instead of polling."""
    if used < 0:
        raise ValueError(f"Sends used cannot be negative: {used}.")
    start, end = check_sending_hours(sending_hours)
    if used >= cap:
        return None
    window = (end - start) * _MICROS_PER_HOUR
    offset = -(-used * window // cap)  # ceiling: the first microsecond the slot has begun
    return _time_at(start * _MICROS_PER_HOUR + offset)


def _micros(moment: time) -> int:
    return ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1_000_000 + moment.microsecond


def _time_at(micros: int) -> time:
    return (_MIDNIGHT + timedelta(microseconds=micros)).time()
