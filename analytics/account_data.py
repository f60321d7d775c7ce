"""The SQL behind the account analyses (cohorts, RFM, LTV): per-week and
per-subscriber aggregates, so ten million events are grouped by the database and
Python receives at most one row per subscriber.

Weeks are ISO weeks (Monday 00:00 UTC), numbered from 1970-01-05, the first Monday
after the Unix epoch: ``(epoch seconds - 4 days) // 7 days``. The same number on
PostgreSQL and SQLite, from each one's own epoch function. Every query is scoped to
one account.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

WEEK_SECONDS = 7 * 86400
FIRST_MONDAY = date(1970, 1, 5)
# Engagement for the cohort table: the message events a subscriber acts on.
ENGAGED = ("opened", "clicked")
_ENGAGED_SQL = ", ".join(f"'{name}'" for name in ENGAGED)


def _epoch(dialect: str, column: str) -> str:
    if dialect == "postgresql":
        return f"extract(epoch from {column})"
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


def _week(dialect: str, column: str) -> str:
    return f"CAST(floor(({_epoch(dialect, column)} - 345600) / {WEEK_SECONDS}) AS BIGINT)" \
        if dialect == "postgresql" else f"(({_epoch(dialect, column)} - 345600) / {WEEK_SECONDS})"


def week_of(moment: datetime) -> int:
    return (moment.date() - FIRST_MONDAY).days // 7


def monday(week: int) -> date:
    return FIRST_MONDAY + timedelta(days=7 * int(week))


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def watermark(session: Session, account_id: int) -> tuple[int, int]:
    """The account's highest event and subscriber ids: what a result is computed from."""
    row = session.execute(text(
        "SELECT (SELECT coalesce(max(id), 0) FROM events WHERE account_id = :a), "
        "(SELECT coalesce(max(id), 0) FROM subscribers WHERE account_id = :a)"), {"a": account_id}).one()
    return int(row[0]), int(row[1])


def cohort_sizes(session: Session, account_id: int) -> pd.DataFrame:
    """``cohort`` (signup week) and ``subscribers``."""
    week = _week(_dialect(session), "created_at")
    rows = session.execute(text(f"SELECT {week} AS cohort, count(*) FROM subscribers WHERE account_id = :a "
                                f"GROUP BY 1"), {"a": account_id}).all()
    return pd.DataFrame(rows, columns=["cohort", "subscribers"], dtype="int64")


def engaged_by_week(session: Session, account_id: int) -> pd.DataFrame:
    """``cohort``, ``offset`` (weeks after the signup week) and ``engaged``: the
    subscribers with an ENGAGED event in that week. Distinct (subscriber, week)
    pairs first, so a subscriber opening ten emails in a week counts once."""
    dialect = _dialect(session)
    rows = session.execute(text(
        f"SELECT s.cohort, w.week - s.cohort AS week_offset, count(*) FROM "
        f"(SELECT DISTINCT subscriber_id, {_week(dialect, 'occurred_at')} AS week FROM events "
        f" WHERE account_id = :a AND subscriber_id IS NOT NULL AND name IN ({_ENGAGED_SQL})) w "
        f"JOIN (SELECT id, {_week(dialect, 'created_at')} AS cohort FROM subscribers WHERE account_id = :a) s "
        f"ON s.id = w.subscriber_id GROUP BY 1, 2"), {"a": account_id}).all()
    return pd.DataFrame(rows, columns=["cohort", "offset", "engaged"], dtype="int64")


def purchases_by_subscriber(session: Session, account_id: int) -> pd.DataFrame:
    """One row per subscriber with at least one event carrying a ``value`` (a
    purchase): ``subscriber_id``, ``cohort``, ``transactions``, ``revenue``, and the
    first and last purchase as epoch seconds (``first_at``, ``last_at``)."""
    dialect = _dialect(session)
    rows = session.execute(text(
        f"SELECT p.subscriber_id, {_week(dialect, 's.created_at')}, p.n, p.revenue, p.first_at, p.last_at FROM "
        f"(SELECT subscriber_id, count(*) AS n, sum(value) AS revenue, "
        f" min({_epoch(dialect, 'occurred_at')}) AS first_at, max({_epoch(dialect, 'occurred_at')}) AS last_at "
        f" FROM events WHERE account_id = :a AND subscriber_id IS NOT NULL AND value IS NOT NULL "
        f" GROUP BY subscriber_id) p "
        f"JOIN subscribers s ON s.id = p.subscriber_id AND s.account_id = :a"), {"a": account_id}).all()
    frame = pd.DataFrame(rows, columns=["subscriber_id", "cohort", "transactions", "revenue", "first_at", "last_at"])
    return frame.astype({"subscriber_id": "int64", "cohort": "int64", "transactions": "int64", "revenue": "float64",
                         "first_at": "float64", "last_at": "float64"})


def emails(session: Session, account_id: int, subscriber_ids: list[int]) -> dict[int, str]:
    if not subscriber_ids:
        return {}
    rows = session.execute(text("SELECT id, email FROM subscribers WHERE account_id = :a AND id IN "
                                f"({', '.join(str(int(i)) for i in subscriber_ids)})"), {"a": account_id}).all()
    return {int(i): e for i, e in rows}
