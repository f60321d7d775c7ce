"""A sequence's funnel by step: how many enrollments entered each step, passed
it, left at it (by the goal, or by a condition, an exit step or the subscriber
leaving) and wait at it now.

The engine records where an enrollment is, not the path it took: this reads the
enrollments' current positions, one grouped query. An enrollment at position p,
or finished beyond it, is counted as having passed every step before p. That holds
for sequences that run straight through; after a ``goto`` back or a branch that
skips ahead, a step can be credited with an enrollment that jumped over it, and a
step revisited counts the enrollment once. Step transitions folded into rollups
would tell those apart; the engine does not record them today.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Enrollment, Sequence

WAITING = ("active", "paused")


def step_funnel(session: Session, sequence: Sequence) -> list[dict[str, Any]]:
    """One row per step, in order: entered, passed, exited (exited_goal +
    exited_condition), failed and waiting."""
    goal = Enrollment.exit_reason.like("goal:%")
    at: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for position, status, by_goal, n in session.execute(
            select(Enrollment.current_step, Enrollment.status, goal, func.count())
            .where(Enrollment.sequence_id == sequence.id, Enrollment.account_id == sequence.account_id)
            .group_by(Enrollment.current_step, Enrollment.status, goal)):
        key = ("waiting" if status in WAITING else "exited_goal" if status == "exited" and by_goal
               else "exited_condition" if status == "exited" else status)
        at[int(position)][key] += int(n)
    steps = sorted(sequence.steps, key=lambda s: s.position)
    beyond = sum(sum(counts.values()) for position, counts in at.items() if position >= len(steps))
    rows: list[dict[str, Any]] = []
    for step in reversed(steps):
        here = at.get(step.position, {})
        exited_goal, exited_condition = here.get("exited_goal", 0), here.get("exited_condition", 0)
        stopped = here.get("waiting", 0) + exited_goal + exited_condition + here.get("failed", 0) + here.get("completed", 0)
        rows.append({"step_id": step.id, "step": step.position, "type": step.type, "entered": beyond + stopped,
                     "passed": beyond, "exited": exited_goal + exited_condition, "exited_goal": exited_goal,
                     "exited_condition": exited_condition, "failed": here.get("failed", 0),
                     "waiting": here.get("waiting", 0)})
        beyond += stopped
    return list(reversed(rows))
