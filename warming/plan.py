"""A warming plan's settings validated together, each group's cap, and the daily
step that moves every group of a plan.

The storage, the API and the beat task sit on top of these: the API builds
``PlanSettings.from_dict`` from the request (a ``WarmingError`` names the bad
field), the send path asks ``group_caps`` and ``warming.spread.allowance``, and the
daily task, at local midnight in the plan's timezone, calls ``close_day`` with each
group's traffic and stores the states and adjustments it returns.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from warming.errors import WarmingError
from warming.health import Thresholds, Traffic, judge
from warming.mailbox import DEFAULT_SHARES, GROUPS, check_shares, split_cap
from warming.ramp import Adjustment, RampState, cap_for, next_day
from warming.schedule import DEFAULT_DAYS, DEFAULT_START_VOLUME, DEFAULT_TARGET_VOLUME, daily_volumes
from warming.spread import DEFAULT_SENDING_HOURS, check_sending_hours

_KEYS = ("days", "start_volume", "target_volume", "curve", "schedule", "thresholds", "shares",
         "sending_hours", "timezone")


@dataclass(frozen=True)
class PlanSettings:
    """Everything a plan's owner may set; invalid settings raise ``WarmingError`` on construction.

    ``schedule`` is the day-by-day table of the custom curve (None otherwise);
    ``volumes`` is the schedule actually followed, whatever the curve.
    """

    days: int = DEFAULT_DAYS
    start_volume: int = DEFAULT_START_VOLUME
    target_volume: int = DEFAULT_TARGET_VOLUME
    curve: str = "geometric"
    schedule: tuple[int, ...] | None = None
    thresholds: Thresholds = Thresholds()
    shares: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SHARES))
    sending_hours: tuple[int, int] = DEFAULT_SENDING_HOURS
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if not isinstance(self.thresholds, Thresholds):
            raise WarmingError("thresholds", "Must be an object.")
        object.__setattr__(self, "shares", check_shares(self.shares))
        object.__setattr__(self, "sending_hours", check_sending_hours(self.sending_hours))
        # computed now, so bad volumes or an unknown timezone fail here and not at the first send
        self.volumes, self.zone

    @cached_property
    def volumes(self) -> list[int]:
        return daily_volumes(self.days, self.start_volume, self.target_volume, self.curve, self.schedule)

    @cached_property
    def zone(self) -> ZoneInfo:
        """The plan's timezone, in which its days start and its sending hours are read."""
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise WarmingError("timezone", "Not a known IANA timezone.") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanSettings:
        """Settings from a plan's JSON; every key left out keeps its default."""
        if not isinstance(data, Mapping):
            raise WarmingError("plan", "Must be an object.")
        for key in data:
            if key not in _KEYS:
                raise WarmingError(str(key), "Unknown field.")
        values = {key: data[key] for key in _KEYS if data.get(key) is not None}
        if "thresholds" in values:
            values["thresholds"] = Thresholds.from_dict(values["thresholds"])
        for key in ("schedule", "sending_hours"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready settings, ``from_dict``'s inverse."""
        data = asdict(self)
        data["schedule"] = list(self.schedule) if self.schedule is not None else None
        data["sending_hours"] = list(self.sending_hours)
        return data

    def warmed_groups(self) -> tuple[str, ...]:
        """The groups this plan warms; a group with a share of 0 never sends, so it is not judged."""
        return tuple(group for group in GROUPS if self.shares[group] > 0)


def group_caps(settings: PlanSettings, states: Mapping[str, RampState]) -> dict[str, int | None]:
    """Each group's cap today: its share of the volume at its own level (0 while
    paused, None once completed). A group without a stored state starts at level 1."""
    caps: dict[str, int | None] = {}
    for group in GROUPS:
        total = cap_for(settings.volumes, states.get(group, RampState()))
        caps[group] = None if total is None else split_cap(total, settings.shares)[group]
    return caps


def total_cap(caps: Mapping[str, int | None]) -> int | None:
    """The plan's cap today, the sum of its groups' (None as soon as one group has no cap)."""
    return None if any(cap is None for cap in caps.values()) else sum(caps.values())  # type: ignore[arg-type]


def close_day(settings: PlanSettings, states: Mapping[str, RampState], traffic: Mapping[str, Traffic],
              day: int) -> tuple[dict[str, RampState], dict[str, Adjustment]]:
    """Judge each warmed group on its own traffic and move it to its next day.

    ``traffic`` is each group's traffic of ``day``, or of a few recent days ending
    with it (``Traffic`` adds up), so a quiet day is judged on more than a handful.

    Returns every group's new state and the adjustments to record, by group. A
    group missing from ``traffic`` sent nothing, which holds it; a group with a
    share of 0 is left as it is.
    """
    new_states = {group: states.get(group, RampState()) for group in GROUPS}
    adjustments: dict[str, Adjustment] = {}
    for group in settings.warmed_groups():
        verdict = judge(traffic.get(group, Traffic()), settings.thresholds)
        new_states[group], adjustment = next_day(new_states[group], verdict, settings.days, day)
        if adjustment is not None:
            adjustments[group] = adjustment
    return new_states, adjustments


def plan_status(settings: PlanSettings, states: Mapping[str, RampState]) -> str:
    """One status for the plan from its warmed groups: paused if any is, else held if
    any is, completed when all are, else warming."""
    statuses = {states.get(group, RampState()).status for group in settings.warmed_groups()}
    for status in ("paused", "held"):
        if status in statuses:
            return status
    return "completed" if statuses == {"completed"} else "warming"
