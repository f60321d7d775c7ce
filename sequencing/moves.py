"""What a step handler decides: go on, jump, wait, or leave the sequence."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Next:
    """Continue with the following step now."""


@dataclass(frozen=True)
class Goto:
    position: int


@dataclass(frozen=True)
class Wait:
    """Stay on this step until ``until``; the tick brings the enrollment back then."""

    until: datetime


@dataclass(frozen=True)
class Exit:
    reason: str


Move = Next | Goto | Wait | Exit


def branch(target: int | str | None) -> Move:
    """A branch target as written in step config: a position, "exit" or "next"."""
    if target is None or target == "next":
        return Next()
    if target == "exit":
        return Exit("branch_exit")
    return Goto(int(target))
