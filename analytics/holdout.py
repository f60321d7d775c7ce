"""A sequence's lift over its holdout group: did its emails change how many people convert?

Enrollments drawn into the holdout (``enrollments.held_out``, sequencing.holdout)
walk the sequence without being sent its emails. Each enrollment, treated or held
out, has **converted** when its subscriber sent the sequence's goal event
(``settings.goal.event``) within ``goal.within_days`` after the enrollment began,
or when it left the sequence by an exit event (``exit_reason`` ``goal:…``). Every
enrollment counts, whatever became of it (failed, exited, still running): the
groups are compared as they were drawn, so nothing the emails caused (an
unsubscribe, say) can move people out of one group's denominator.

The lift is the treated group's conversion rate minus the held-out group's
(absolute) and that difference over the held-out rate (relative). Intervals:

- absolute: Newcombe's hybrid score interval (his method 10, Statistics in
  Medicine 1998;17:873-890), built from the two groups' Wilson intervals. It stays
  inside [-1, 1] and keeps its coverage with few conversions, where the Wald
  interval (difference ± z·SE) is too narrow;
- relative: from the ratio of the rates (scipy.stats.contingency.relative_risk,
  Katz's log interval), minus one; none when the held-out group has no conversion.

These are fixed-sample intervals: unlike the experiments' (analytics.sequential)
they are not valid at every look, so decide on a size up front rather than stop
the first time the interval clears zero.

Pure statistics first (no I/O), then one statement of SQL.
"""
from __future__ import annotations

import math
from typing import Any

from scipy.stats import norm
from scipy.stats.contingency import relative_risk
from sqlalchemy import text
from sqlalchemy.orm import Session

from analytics.rollups import days_after
from analytics.sequence_cache import Counted, probe
from models import Sequence

# Fewer enrollments than this in either group and no lift is given: the normal
# approximations behind the intervals need some tens of trials a group.
MIN_PER_GROUP = 30
DEFAULT_CONFIDENCE = 0.95
METHOD = "newcombe_hybrid_score"


def _z(confidence: float) -> float:
    return float(norm.ppf(1 - (1 - confidence) / 2))


def wilson_interval(successes: int, trials: int, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Wilson's score interval for one proportion (no continuity correction)."""
    if trials <= 0:
        raise ValueError("trials must be positive")
    z = _z(confidence)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(successes_a: int, trials_a: int, successes_b: int, trials_b: int,
                      confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Newcombe's hybrid score interval for ``p_a - p_b`` (method 10 of his 1998 paper)."""
    p_a, p_b = successes_a / trials_a, successes_b / trials_b
    low_a, high_a = wilson_interval(successes_a, trials_a, confidence)
    low_b, high_b = wilson_interval(successes_b, trials_b, confidence)
    difference = p_a - p_b
    return (difference - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2),
            difference + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2))


def relative_interval(successes_a: int, trials_a: int, successes_b: int, trials_b: int,
                      confidence: float = DEFAULT_CONFIDENCE) -> tuple[float | None, tuple[float, float] | None]:
    """``p_a / p_b - 1`` and its interval (Katz's log method on the ratio); (None,
    None) when group b has no success (no ratio), an interval of None when a has none."""
    if successes_b == 0:
        return None, None
    ratio = relative_risk(successes_a, trials_a, successes_b, trials_b)
    if successes_a == 0:
        return ratio.relative_risk - 1, None
    interval = ratio.confidence_interval(confidence)
    return float(ratio.relative_risk) - 1, (float(interval.low) - 1, float(interval.high) - 1)


def lift(treated: tuple[int, int], held_out: tuple[int, int], *, confidence: float = DEFAULT_CONFIDENCE,
         min_per_group: int = MIN_PER_GROUP) -> dict[str, Any]:
    """The API's lift fields from (converted, enrollments) of each group."""
    groups = [{"group": name, "enrollments": n, "converted": x, "rate": x / n if n else None}
              for name, (x, n) in (("treated", treated), ("held_out", held_out))]
    answer: dict[str, Any] = {"status": "insufficient_data", "method": METHOD, "confidence": confidence,
                              "min_per_group": min_per_group, "groups": groups, "absolute_lift": None,
                              "absolute_lift_interval": None, "relative_lift": None, "relative_lift_interval": None}
    (x_t, n_t), (x_h, n_h) = treated, held_out
    if min(n_t, n_h) < max(min_per_group, 1):
        return answer
    relative, relative_ci = relative_interval(x_t, n_t, x_h, n_h, confidence)
    answer.update(status="ok", absolute_lift=x_t / n_t - x_h / n_h,
                  absolute_lift_interval=list(newcombe_interval(x_t, n_t, x_h, n_h, confidence)),
                  relative_lift=relative, relative_lift_interval=list(relative_ci) if relative_ci else None)
    return answer


def group_counts(session: Session, sequence: Sequence) -> dict[bool, tuple[int, int]]:
    """held_out -> (converted, enrollments) of the sequence's enrollments, in one
    statement: the enrollments whose goal event came in their window are found by a
    join of the sequence's enrollments with the account's goal events (which the
    planner may hash; an EXISTS probe per enrollment took twice as long at 1M
    enrollments), then every enrollment is counted once, in its group."""
    goal = (sequence.settings or {}).get("goal") or {}
    params: dict[str, Any] = {"account": sequence.account_id, "sequence": sequence.id}
    mine = "e.account_id = :account AND e.sequence_id = :sequence"
    if goal.get("event"):
        after = days_after(session.get_bind().dialect.name, "e.enrolled_at", "within")
        by_event = (f"WITH by_event AS (SELECT DISTINCT e.id FROM enrollments e JOIN events v"
                    f" ON v.subscriber_id = e.subscriber_id WHERE {mine} AND v.account_id = :account"
                    f" AND v.name = :event AND v.occurred_at >= e.enrolled_at AND v.occurred_at <= {after}) ")
        params.update(event=str(goal["event"]), within=int(goal.get("within_days") or 7))
        converted, join = "c.id IS NOT NULL OR ", " LEFT JOIN by_event c ON c.id = e.id"
    else:
        by_event = converted = join = ""
    rows = session.execute(text(
        f"{by_event}SELECT e.held_out, count(*),"
        f" sum(CASE WHEN {converted}e.exit_reason LIKE 'goal:%' THEN 1 ELSE 0 END)"
        f" FROM enrollments e{join} WHERE {mine} GROUP BY e.held_out"), params)
    counts = {False: (0, 0), True: (0, 0)}
    for held_out, enrollments, n_converted in rows:
        counts[bool(held_out)] = (int(n_converted or 0), int(enrollments))
    return counts


def _stored_counts(session: Session, sequence: Sequence) -> dict[str, list[int]]:
    counts = group_counts(session, sequence)
    return {"treated": list(counts[False]), "held_out": list(counts[True])}


def _enrollments_up_to(session: Session, sequence: Sequence, limit: int) -> int:
    return probe(session, "SELECT 1 FROM enrollments WHERE sequence_id = :sequence", {"sequence": sequence.id}, limit)


# For analytics.sequence_cache: the counts depend on the goal alone (exits by an
# exit event are read from exit_reason, whatever the exit_events setting).
HOLDOUT = Counted(key=lambda sequence: (sequence.settings or {}).get("goal") or None,
                  size=_enrollments_up_to, count=_stored_counts)


def holdout_report(session: Session, sequence: Sequence, *, confidence: float = DEFAULT_CONFIDENCE,
                   min_per_group: int = MIN_PER_GROUP,
                   counts: dict[str, list[int]] | None = None) -> dict[str, Any]:
    """The sequence's conversions, treated against held out, and the lift between them,
    from ``counts`` (``{"treated": [converted, enrollments], "held_out": [...]}``,
    as analytics.sequence_cache serves them) or, without, counted now.

    ``status``: ``ok``; ``insufficient_data`` while either group has fewer than
    ``min_per_group`` enrollments; ``no_goal`` when the sequence has neither a goal
    nor exit events, so nothing can count as a conversion."""
    settings = sequence.settings or {}
    goal = settings.get("goal") or None
    stored = counts if counts is not None else _stored_counts(session, sequence)
    treated, held_out = tuple(stored["treated"]), tuple(stored["held_out"])
    answer = {"sequence_id": sequence.id, "holdout_percent": settings.get("holdout_percent") or 0, "goal": goal,
              "exit_events": list(settings.get("exit_events") or []),
              **lift(treated, held_out, confidence=confidence, min_per_group=min_per_group)}
    if not goal and not answer["exit_events"]:
        answer.update(status="no_goal", absolute_lift=None, absolute_lift_interval=None, relative_lift=None,
                      relative_lift_interval=None)
    return answer
