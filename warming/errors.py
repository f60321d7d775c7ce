"""The one error of warming settings, naming the bad field by its dotted path
(``thresholds.bounce.hold``, ``schedule.3``) so the API can answer 422 with it."""
from __future__ import annotations

import math
from typing import Any

from core.errors import InvalidFieldError


class WarmingError(InvalidFieldError):
    """A warming setting is invalid; ``field`` is its path, ``message`` says why
    (``str()`` is ``field: message``, as for every one-field error)."""


class ScheduleError(WarmingError):
    """The length, volumes, curve or table of a plan is invalid."""


class ThresholdsError(WarmingError):
    """A health threshold is out of range or out of order."""


class SharesError(WarmingError):
    """The mailbox-provider shares of the daily cap are invalid."""


def is_number(value: Any) -> bool:
    """A finite int or float: NaN would compare false with every threshold and pass silently."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)
