"""A sequence's funnel by step: how many times enrollments entered each step,
passed it, left at it (by the goal, or by a condition's exit branch, an exit step
or the subscriber leaving), failed at it, and how many wait at it now.

Read from the recorded step transitions (core.flow), not from where enrollments
are now: a goto back counts each visit of the steps it revisits (``entered`` and
``passed`` count visits, not people), and a branch that skips ahead credits only
the steps actually run. One statement, hence one snapshot: the folded counts
(``step_flow_rollups``, a few rows per step and day) plus the transitions not
folded yet (past the account's flow watermark, an index range), so the answer is
exact as of the moment it is read, however far behind the fold is; only the
unfolded tail's size grows its cost. ``waiting`` is what entered a step and has
not left it by any recorded move, exact because every move is recorded in the
transaction that makes it.

Enrollments that existed before migration 0018 were counted from their position
then (that migration's docstring says how).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.flow import KINDS
from models import Sequence

# Query text that matters for speed: the rollups by their unique key's prefix
# (sequence_id), the tail by ix_step_transitions_sequence_xact past the watermark.
_COUNTS = text(
    "SELECT position, kind, sum(n) FROM ("
    " SELECT position, kind, n FROM step_flow_rollups WHERE sequence_id = :sequence AND account_id = :account"
    " UNION ALL"
    " SELECT t.position, t.kind, t.n FROM step_transitions t CROSS JOIN"
    "  (SELECT coalesce(max(flow_xact), 0) AS xact, coalesce(max(flow_id), 0) AS id FROM rollup_watermarks"
    "   WHERE account_id = :account) w"
    "  WHERE t.sequence_id = :sequence AND t.account_id = :account AND (t.xact, t.id) > (w.xact, w.id)"
    ") flow GROUP BY position, kind")
# Moves that take an enrollment off a step.
LEAVING = tuple(kind for kind in KINDS if kind != "entered")


def flow_counts(session: Session, sequence: Sequence) -> dict[int, dict[str, int]]:
    """Position -> kind -> enrollments that made that move there, all of them so far."""
    at: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for position, kind, n in session.execute(_COUNTS, {"sequence": sequence.id, "account": sequence.account_id}):
        at[int(position)][kind] += int(n)
    return at


def step_funnel(session: Session, sequence: Sequence) -> list[dict[str, Any]]:
    """One row per step, in order: entered, passed, exited (exited_goal +
    exited_condition, the latter including subscribers who left, also given alone
    as exited_unsubscribed), failed and waiting."""
    at = flow_counts(session, sequence)
    rows: list[dict[str, Any]] = []
    for step in sorted(sequence.steps, key=lambda s: s.position):
        here = at.get(step.position, {})
        goal, exit_, left = here.get("goal", 0), here.get("exit", 0), here.get("left", 0)
        rows.append({"step_id": step.id, "step": step.position, "type": step.type, "entered": here.get("entered", 0),
                     "passed": here.get("passed", 0), "exited": goal + exit_ + left, "exited_goal": goal,
                     "exited_condition": exit_ + left, "exited_unsubscribed": left, "failed": here.get("failed", 0),
                     "waiting": here.get("entered", 0) - sum(here.get(kind, 0) for kind in LEAVING)})
    return rows
