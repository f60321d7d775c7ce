"""The SQL behind the account analyses (cohorts, RFM, LTV): per-week and
per-subscriber aggregates, so ten million events are grouped by the database and
Python receives at most one row per subscriber.

Weeks are ISO weeks (Monday 00:00 UTC), numbered from 1970-01-05, the first Monday
after the Unix epoch: ``(epoch seconds - 4 days) // 7 days``. The same number on
PostgreSQL and SQLite, from each one's own epoch function. Every query is scoped to
one account.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

WEEK_SECONDS = 7 * 86400
FIRST_MONDAY = date(1970, 1, 5)
# Engagement for the cohort table: the message events a subscriber acts on.
ENGAGED = ("opened", "clicked")
# Per computation, in the database server's memory, not the worker's.
WORK_MEM = "256MB"
_ENGAGED_SQL = ", ".join(f"'{name}'" for name in ENGAGED)


def _epoch(dialect: str, column: str) -> str:
    if dialect == "postgresql":
        return f"date_part('epoch', {column})"  # double precision; extract() is numeric
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


def _week(dialect: str, column: str) -> str:
    # PostgreSQL: date arithmetic in integers; extract(epoch ...) is numeric there,
    # and numeric division over ten million rows took most of the query's time.
    if dialect == "postgresql":
        return f"((({column}) AT TIME ZONE 'UTC')::date - DATE '1970-01-05') / 7"
    return f"(({_epoch(dialect, column)} - 345600) / {WEEK_SECONDS})"


def week_of(moment: datetime) -> int:
    return (moment.date() - FIRST_MONDAY).days // 7


def monday(week: int) -> date:
    return FIRST_MONDAY + timedelta(days=7 * int(week))


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def prepare(session: Session) -> None:
    """Give this transaction's sorts and hashes room on PostgreSQL: at the default
    4 MB work_mem, grouping ten million events into (subscriber, week) pairs spills
    to disk several times over. And no JIT: these statements are planned as costly
    enough for it, and it compiled for about a second of the cohorts' ten on the
    bench without saving as much. SET LOCAL ends with the transaction."""
    if _dialect(session) == "postgresql":
        session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        session.execute(text("SET LOCAL jit = off"))


def _rows(session: Session, sql: str, params: dict[str, object]) -> list[tuple]:
    """The rows as the driver's plain tuples. SQLAlchemy's Row objects cost pandas
    a failed attribute lookup each (DataFrame probes every row for ``_fields``):
    about 4 s of the RFM's 7 for 272,000 customers on the bench."""
    result = session.execute(text(sql), params)
    try:
        return list(result.cursor.fetchall())  # type: ignore[attr-defined]
    finally:
        result.close()


def watermark(session: Session, account_id: int) -> tuple[int, int]:
    """The account's highest event and subscriber ids: what a result is computed from."""
    row = session.execute(text(
        "SELECT (SELECT coalesce(max(id), 0) FROM events WHERE account_id = :a), "
        "(SELECT coalesce(max(id), 0) FROM subscribers WHERE account_id = :a)"), {"a": account_id}).one()
    return int(row[0]), int(row[1])


def cohort_sizes(session: Session, account_id: int) -> pd.DataFrame:
    """``cohort`` (signup week) and ``subscribers``."""
    week = _week(_dialect(session), "created_at")
    rows = _rows(session, f"SELECT {week} AS cohort, count(*) FROM subscribers WHERE account_id = :a GROUP BY 1",
                 {"a": account_id})
    return pd.DataFrame(rows, columns=["cohort", "subscribers"], dtype="int64")


def engaged_by_week(session: Session, account_id: int, this_week: int, weeks: int) -> pd.DataFrame:
    """``cohort``, ``offset`` (weeks after the signup week) and ``engaged``: the
    subscribers with an ENGAGED event in that week, for the cohorts of the last
    ``weeks`` weeks (at most 63). A subscriber opening ten emails in a week counts once."""
    if _dialect(session) == "postgresql":
        return _engaged_from_masks(session, account_id, this_week, weeks)
    dialect = _dialect(session)
    rows = _rows(session, (
        f"SELECT s.cohort, w.week - s.cohort AS week_offset, count(*) FROM "
        f"(SELECT DISTINCT subscriber_id, {_week(dialect, 'occurred_at')} AS week FROM events "
        f" WHERE account_id = :a AND subscriber_id IS NOT NULL AND name IN ({_ENGAGED_SQL})) w "
        f"JOIN (SELECT id, {_week(dialect, 'created_at')} AS cohort FROM subscribers WHERE account_id = :a) s "
        f"ON s.id = w.subscriber_id GROUP BY 1, 2"), {"a": account_id})
    return pd.DataFrame(rows, columns=["cohort", "offset", "engaged"], dtype="int64")


def purchases_by_subscriber(session: Session, account_id: int) -> pd.DataFrame:
    """One row per subscriber with at least one event carrying a ``value`` (a
    purchase): ``subscriber_id``, ``cohort``, ``transactions``, ``revenue``, and the
    first and last purchase as epoch seconds (``first_at``, ``last_at``)."""
    dialect = _dialect(session)
    rows = _rows(session, (
        f"SELECT p.subscriber_id, {_week(dialect, 's.created_at')}, p.n, p.revenue, p.first_at, p.last_at FROM "
        f"(SELECT subscriber_id, count(*) AS n, sum(value) AS revenue, "
        f" min({_epoch(dialect, 'occurred_at')}) AS first_at, max({_epoch(dialect, 'occurred_at')}) AS last_at "
        f" FROM events WHERE account_id = :a AND subscriber_id IS NOT NULL AND value IS NOT NULL "
        f" GROUP BY subscriber_id) p "
        f"JOIN subscribers s ON s.id = p.subscriber_id AND s.account_id = :a"), {"a": account_id})
    frame = pd.DataFrame(rows, columns=["subscriber_id", "cohort", "transactions", "revenue", "first_at", "last_at"])
    return frame.astype({"subscriber_id": "int64", "cohort": "int64", "transactions": "int64", "revenue": "float64",
                         "first_at": "float64", "last_at": "float64"})


class Reads:
    """One computation's reads of an account, each made once: RFM and LTV computed
    together (analytics.account_analyses) share the purchases and cohort sizes."""

    def __init__(self, session: Session, account_id: int) -> None:
        self.session, self.account_id = session, account_id
        self._purchases: pd.DataFrame | None = None
        self._sizes: pd.DataFrame | None = None

    def purchases(self) -> pd.DataFrame:
        if self._purchases is None:
            self._purchases = purchases_by_subscriber(self.session, self.account_id)
        return self._purchases

    def sizes(self) -> pd.DataFrame:
        if self._sizes is None:
            self._sizes = cohort_sizes(self.session, self.account_id)
        return self._sizes


def emails(session: Session, account_id: int, subscriber_ids: list[int]) -> dict[int, str]:
    if not subscriber_ids:
        return {}
    rows = session.execute(text("SELECT id, email FROM subscribers WHERE account_id = :a AND id IN "
                                f"({', '.join(str(int(i)) for i in subscriber_ids)})"), {"a": account_id}).all()
    return {int(i): e for i, e in rows}


def _engaged_from_masks(session: Session, account_id: int, this_week: int, weeks: int) -> pd.DataFrame:
    """PostgreSQL: one row per subscriber, not per (subscriber, week): the weeks it
    engaged as bits of a bigint (bit k: k weeks before this one), which the database
    groups per subscriber with ``bit_or``; numpy then counts the bits per cohort and
    offset. Grouping ten million events into (subscriber, week) pairs instead took
    2.6 times as long on the bench (its hash table is seven times the size)."""
    since, until = (datetime.combine(monday(w), time(), timezone.utc) for w in (this_week - weeks + 1, this_week + 1))
    week = _week("postgresql", "e.occurred_at")
    rows = _rows(session, (
        f"SELECT {_week('postgresql', 's.created_at')}, m.mask FROM "
        f"(SELECT e.subscriber_id, bit_or(1::bigint << (:w - {week})::int) AS mask FROM events e "
        f" WHERE e.account_id = :a AND e.subscriber_id IS NOT NULL AND e.name IN ({_ENGAGED_SQL}) "
        f" AND e.occurred_at >= :since AND e.occurred_at < :until GROUP BY e.subscriber_id) m "
        f"JOIN subscribers s ON s.id = m.subscriber_id AND s.account_id = :a WHERE s.created_at >= :since"),
        {"a": account_id, "w": this_week, "since": since, "until": until})
    if not rows:
        return pd.DataFrame({"cohort": [], "offset": [], "engaged": []}, dtype="int64")
    pairs = np.array(rows, dtype=np.int64)
    cohorts, masks = pairs[:, 0], pairs[:, 1]
    del rows
    first = this_week - weeks + 1
    counts = np.zeros((weeks, weeks), dtype=np.int64)  # [cohort - first, offset]
    for k in range(weeks):
        offset = this_week - k - cohorts
        hit = ((masks >> k) & 1).astype(bool) & (offset >= 0)
        cells = (cohorts[hit] - first) * weeks + offset[hit]
        counts += np.bincount(cells, minlength=weeks * weeks).reshape(weeks, weeks)
    cohort_index, offsets = np.nonzero(counts)
    return pd.DataFrame({"cohort": cohort_index + first, "offset": offsets,
                         "engaged": counts[cohort_index, offsets]}, dtype="int64")
