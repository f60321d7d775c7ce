"""A sequence's email results by step and variant: how many of its messages were
sent, delivered, opened, clicked, bounced, complained about and unsubscribed from,
and the conversions and revenue they led to.

Answered from the rollups (``analytics.rollups``), which count each message once
per name whatever the event's source (our tracking, providers' webhooks, SMTP
replies): a second open of the same email is not a second opener, though it is a
second open in ``opened_total``. ``as_of`` says how fresh they are: every event
committed before it is counted.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.rollups import CONVERTED, COUNTED, watermark
from models import Sequence, SequenceRollup

Key = tuple[int, str]


def _row(step_id: int, position: int, variant: str | None, found: dict[str, tuple[int, int, float]]) -> dict[str, Any]:
    def uniques(name: str) -> int:
        return found.get(name, (0, 0, 0.0))[0]

    converted = found.get(CONVERTED, (0, 0, 0.0))
    return {"step_id": step_id, "position": position, "step": position, "variant": variant,
            **{name: uniques(name) for name in COUNTED},
            "opened_total": found.get("opened", (0, 0, 0.0))[1], "clicked_total": found.get("clicked", (0, 0, 0.0))[1],
            "converted": converted[0], "conversions": converted[1], "revenue": round(converted[2], 2)}


def _rows(sequence: Sequence, counts: dict[Key, dict[str, tuple[int, int, float]]]) -> list[dict[str, Any]]:
    """One row per email step and variant, in step order: the variants the step
    defines, then any its messages carry that it no longer defines."""
    result = []
    for step in sorted(sequence.steps, key=lambda s: s.position):
        if step.type != "email":
            continue
        defined = [v.get("name") or "" for v in step.config.get("variants") or []] or [""]
        seen = sorted({variant for (step_id, variant) in counts if step_id == step.id} - set(defined))
        for variant in defined + seen:
            result.append(_row(step.id, step.position, variant or None, counts.get((step.id, variant), {})))
    return result


def step_counts(session: Session, sequence: Sequence, start: date | None = None, end: date | None = None,
                by_day: bool = False) -> dict[str, Any]:
    """``steps``: the sequence's rows over the days from ``start`` to ``end``
    (inclusive, UTC; all days by default); with ``by_day`` also ``series``, the
    rows of each day that has any; and ``as_of``."""
    # Summed per day only when the days are asked for: the totals alone are one row
    # per step, variant and metric, not one per day of the sequence's life.
    grouping = (*((SequenceRollup.day,) if by_day else ()),
                SequenceRollup.step_id, SequenceRollup.variant, SequenceRollup.metric)
    query = (select(*grouping, func.sum(SequenceRollup.uniques), func.sum(SequenceRollup.total),
                    func.sum(SequenceRollup.revenue))
             .where(SequenceRollup.sequence_id == sequence.id, SequenceRollup.account_id == sequence.account_id)
             .group_by(*grouping))
    if start is not None:
        query = query.where(SequenceRollup.day >= start)
    if end is not None:
        query = query.where(SequenceRollup.day <= end)
    totals: dict[Key, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0.0]))
    days: dict[date, dict[Key, dict[str, tuple[int, int, float]]]] = defaultdict(dict)
    for row in session.execute(query):
        *day, step_id, variant, metric, uniques, total, revenue = row
        found = totals[(step_id, variant)][metric]
        found[0] += int(uniques)
        found[1] += int(total)
        found[2] += float(revenue or 0)
        if by_day:
            days[day[0]].setdefault((step_id, variant), {})[metric] = (int(uniques), int(total), float(revenue or 0))
    mark = watermark(session, sequence.account_id)
    answer: dict[str, Any] = {
        "sequence_id": sequence.id, "as_of": mark["as_of"] if mark else None,
        "steps": _rows(sequence, {key: {m: (int(v[0]), int(v[1]), v[2]) for m, v in found.items()}
                                  for key, found in totals.items()})}
    if by_day:
        answer["series"] = [{"day": day, "steps": _rows(sequence, days[day])} for day in sorted(days)]
    return answer
