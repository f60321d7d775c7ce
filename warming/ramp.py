"""The warming state machine of one mailbox-provider group: where in the schedule
it stands, and how one day's verdict moves it.

``level`` is the schedule day whose volume is the group's cap (1-based). It equals
the calendar day number only while nothing has gone wrong: every hold leaves the
level where it is, every step back lowers it, and the plan simply takes longer.

Each group (gmail, yahoo, microsoft, other) has its own state and is moved by its
own verdict, so a bad day at Yahoo holds Yahoo while Gmail keeps climbing.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.validators import is_int
from warming.health import ACTIONS, Verdict

STATUSES = ("warming", "held", "paused", "completed")


@dataclass(frozen=True)
class RampState:
    """``warming`` climbs a level a day; ``held`` waits for a good day at its level;
    ``paused`` sends nothing until an operator resumes it; ``completed`` has no cap."""

    level: int = 1
    status: str = "warming"

    def __post_init__(self) -> None:
        if not is_int(self.level) or self.level < 1:
            raise ValueError(f"RampState.level must be an integer of at least 1, not {self.level!r}.")
        if self.status not in STATUSES:
            raise ValueError(f"RampState.status must be one of {', '.join(STATUSES)}, not {self.status!r}.")


@dataclass(frozen=True)
class Adjustment:
    """A departure from the plain daily climb, kept in the plan's history with its reason.

    ``day`` is the calendar day whose traffic was judged; ``action`` is one of
    hold, step_back, pause, resume (a held or paused group climbing again) and
    complete (the group finished its schedule).
    """

    day: int
    from_level: int
    to_level: int
    action: str
    reason: str


def next_day(state: RampState, verdict: Verdict, days: int, day: int) -> tuple[RampState, Adjustment | None]:
    """The state for the next day after ``day`` was judged ``verdict``, and the adjustment
    to record (None when the group just climbed as planned or nothing can change).

    A paused group stays paused whatever its verdict (only ``resume`` lifts a pause),
    and a completed one stays completed. A group whose level is at or past the last
    day (the plan was shortened under it) completes on its next good day.
    """
    if verdict.action not in ACTIONS:
        raise ValueError(f"Unknown verdict action {verdict.action!r}.")
    if state.status in ("paused", "completed"):
        return state, None
    level = state.level
    if verdict.action == "advance":
        if level >= days:
            done = RampState(level=level, status="completed")
            return done, Adjustment(day, level, level, "complete", f"finished the schedule: {verdict.reason}")
        climbed = RampState(level=level + 1, status="warming")
        if state.status == "held":
            return climbed, Adjustment(day, level, level + 1, "resume", f"rates recovered: {verdict.reason}")
        return climbed, None
    if verdict.action == "hold":
        return RampState(level, "held"), Adjustment(day, level, level, "hold", verdict.reason)
    if verdict.action == "step_back":
        lower = max(1, level - 1)
        return RampState(lower, "held"), Adjustment(day, level, lower, "step_back", verdict.reason)
    return pause(state, day, verdict.reason)


def pause(state: RampState, day: int, reason: str) -> tuple[RampState, Adjustment | None]:
    """Stopping a group's sends, at its level, until an operator resumes it (the daily
    verdict, the running day's alarm or an operator). Pausing a group that is already
    paused or completed changes nothing."""
    if state.status in ("paused", "completed"):
        return state, None
    return RampState(state.level, "paused"), Adjustment(day, state.level, state.level, "pause", reason)


def resume(state: RampState, day: int, reason: str = "resumed by an operator") -> tuple[RampState, Adjustment | None]:
    """An operator lifting a pause. The group restarts one level lower: the rates that
    paused it were past the step-back thresholds too, so a pause is a step back that
    waits for a person. Resuming a group that is not paused changes nothing."""
    if state.status != "paused":
        return state, None
    lower = max(1, state.level - 1)
    return RampState(lower, "warming"), Adjustment(day, state.level, lower, "resume", reason)


def cap_for(volumes: Sequence[int], state: RampState) -> int | None:
    """Today's cap for a group: its level's volume, 0 while paused, None (no cap) once completed."""
    if state.status == "completed":
        return None
    if state.status == "paused":
        return 0
    return volumes[min(state.level, len(volumes)) - 1]
