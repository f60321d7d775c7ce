"""Revenue attribution: which sequence emails led to a conversion, under three models.

A conversion is an event named as the goal (``settings.goal.event``) of one of the
account's sequences, or, with ``event``, an event of that name; its ``value`` (none
is 0) is its revenue. Its touches are the subscriber's sequence emails sent (or, with
``touch="clicked"``, first clicked) within ``window_days`` before it, up to its own
moment. ``last_touch`` credits the latest touch, ``first_touch`` the earliest,
``linear`` each touch an equal share; ties in time go by message id.

Money is counted in integer cents: a linear split gives each touch the floor of its
share and the remainder cents to the latest touch, so a model's attributed revenue
adds up exactly to that of the conversions it covers. Linear ``conversions`` are
fractional (1/n per touch, so they too add up to the conversions covered).
Conversions without a touch in the window are counted as ``unattributed``.

One query joins each conversion to its touches (or to none), numbering them in
time; only the split is done here, in exact arithmetic.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from analytics.rollups import _days_before, _goals
from core.redispatch import timed_text

MODELS = ("last_touch", "first_touch", "linear")
TOUCHES = ("sent", "clicked")
CENT = Decimal("0.01")


def cents(value: float | None) -> int:
    """An event's value in whole cents, rounded half up from its shortest spelling
    (``Decimal(str(...))``: 33.33 is 3333, not 3332.99...)."""
    if value is None:
        return 0
    return int((Decimal(str(value)) / CENT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _money(amount: int) -> Decimal:
    return (Decimal(amount) * CENT).quantize(CENT)


def _touches_sql(touch: str) -> str:
    if touch == "clicked":
        return ("SELECT m.id, m.subscriber_id, m.sequence_id, m.step_id, min(e.occurred_at) AS touched_at"
                " FROM messages m JOIN events e ON e.message_id = m.id AND e.name = 'clicked'"
                " AND e.account_id = :account WHERE m.account_id = :account AND m.sequence_id IS NOT NULL"
                " GROUP BY m.id, m.subscriber_id, m.sequence_id, m.step_id")
    return ("SELECT m.id, m.subscriber_id, m.sequence_id, m.step_id, m.sent_at AS touched_at FROM messages m"
            " WHERE m.account_id = :account AND m.sequence_id IS NOT NULL AND m.status = 'sent'"
            " AND m.sent_at IS NOT NULL")


def _credits(session: Session, account_id: int, names: list[str], window_days: int, touch: str,
             start: datetime | None, end: datetime | None) -> list[Any]:
    """Per conversion and touch in its window (or one row with no touch): the
    conversion, its value, the touch's sequence, step and position, its rank from
    the earliest and from the latest, and the number of touches."""
    dialect = session.get_bind().dialect.name
    params: dict[str, Any] = {"account": account_id, "window": window_days}
    marks = []
    for n, name in enumerate(names):
        params[f"name{n}"] = name
        marks.append(f":name{n}")
    period = ""
    if start is not None:
        period += " AND e.occurred_at >= :start"
        params["start"] = start
    if end is not None:
        period += " AND e.occurred_at < :end"
        params["end"] = end
    # Typed binds: stored as each backend stores the columns (SQLite: UTC text, no zone).
    times = [name for name in ("start", "end") if name in params]
    query = timed_text(
        f"WITH touches AS ({_touches_sql(touch)}),"
        " conversions AS (SELECT e.id, e.subscriber_id, e.value, e.occurred_at FROM events e"
        f" WHERE e.account_id = :account AND e.subscriber_id IS NOT NULL AND e.name IN ({', '.join(marks)}){period})"
        " SELECT c.id AS conversion_id, c.value, t.id AS message_id, t.sequence_id, t.step_id, s.position,"
        " row_number() OVER (PARTITION BY c.id ORDER BY t.touched_at, t.id) AS from_first,"
        " row_number() OVER (PARTITION BY c.id ORDER BY t.touched_at DESC, t.id DESC) AS from_last,"
        " count(t.id) OVER (PARTITION BY c.id) AS touches"
        " FROM conversions c LEFT JOIN touches t ON t.subscriber_id = c.subscriber_id"
        " AND t.touched_at <= c.occurred_at"
        f" AND t.touched_at >= {_days_before(dialect, 'c.occurred_at', 'window')}"
        " LEFT JOIN steps s ON s.id = t.step_id ORDER BY c.id, from_first", *times)
    return list(session.execute(query, params))


def conversion_names(session: Session, account_id: int, event: str | None = None) -> list[str]:
    """The event names that count as conversions: ``event``, else every sequence goal's."""
    return [event] if event else sorted({goal for _, goal, _ in _goals(session, account_id)})


def count_conversions(session: Session, account_id: int, names: list[str], limit: int) -> int:
    """How many of the account's events are conversions, counting no further than ``limit``."""
    if not names:
        return 0
    marks = {f"name{n}": name for n, name in enumerate(names)}
    return int(session.execute(text(
        "SELECT count(*) FROM (SELECT 1 FROM events WHERE account_id = :account AND subscriber_id IS NOT NULL"
        f" AND name IN ({', '.join(':' + m for m in marks)}) LIMIT :limit) c"),
        {"account": account_id, "limit": limit, **marks}).scalar() or 0)


def attribute(session: Session, account_id: int, model: str = "last_touch", window_days: int = 7,
              touch: str = "sent", start: datetime | None = None, end: datetime | None = None,
              event: str | None = None, names: list[str] | None = None) -> dict[str, Any]:
    """The account's conversions (occurred in [start, end)) credited to sequence
    steps under ``model``: ``rows`` per sequence and step with ``conversions`` and
    ``revenue`` (Decimal), and the ``totals`` covered and ``unattributed``."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}")
    if touch not in TOUCHES:
        raise ValueError(f"touch must be one of {', '.join(TOUCHES)}")
    if names is None:  # given when the caller has read them already (analytics.attribution_cache)
        names = conversion_names(session, account_id, event)
    steps: dict[tuple[int, int | None], dict[str, Any]] = {}
    share: dict[tuple[int, int | None], Fraction] = defaultdict(Fraction)
    money: dict[tuple[int, int | None], int] = defaultdict(int)
    totals = {"conversions": 0, "revenue": 0, "unattributed_conversions": 0, "unattributed_revenue": 0}
    for row in _credits(session, account_id, names, window_days, touch, start, end) if names else []:
        value = cents(row.value)
        if row.from_first == 1:
            totals["conversions"] += 1
            totals["revenue"] += value
        if row.message_id is None:
            totals["unattributed_conversions"] += 1
            totals["unattributed_revenue"] += value
            continue
        touches = int(row.touches)
        if model == "last_touch":
            part, credit = (Fraction(1), value) if row.from_last == 1 else (Fraction(0), 0)
        elif model == "first_touch":
            part, credit = (Fraction(1), value) if row.from_first == 1 else (Fraction(0), 0)
        else:
            part = Fraction(1, touches)
            credit = value // touches + (value % touches if row.from_last == 1 else 0)
        key = (row.sequence_id, row.step_id)
        steps.setdefault(key, {"sequence_id": row.sequence_id, "step": row.position, "step_id": row.step_id})
        share[key] += part
        money[key] += credit
    rows = [{**steps[key], "conversions": share[key], "revenue": _money(money[key])}
            for key in sorted(steps, key=lambda k: (k[0], steps[k]["step"] if steps[k]["step"] is not None else -1,
                                                    k[1] or 0))]
    attributed = totals["conversions"] - totals["unattributed_conversions"]
    return {"model": model, "window_days": window_days, "touch": touch, "rows": rows, "totals": {
        "conversions": totals["conversions"], "revenue": _money(totals["revenue"]),
        "attributed_conversions": attributed,
        "attributed_revenue": _money(totals["revenue"] - totals["unattributed_revenue"]),
        "unattributed_conversions": totals["unattributed_conversions"],
        "unattributed_revenue": _money(totals["unattributed_revenue"])}}
