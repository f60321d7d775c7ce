"""The tick's sweep over an outbox table (messages, webhook calls), and the
statement shapes every lease claim uses (sequencing.claims claims enrollments
with them too).

PostgreSQL claims with ``UPDATE ... WHERE id = ANY(ARRAY(SELECT ... FOR UPDATE
SKIP LOCKED LIMIT n))``; SQLite, which runs one write statement at a time, with the
same statement without the lock clause (sequencing.claims says why ``ARRAY``).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.orm import Session

from models.base import UTCDateTime

# How the claim statements pick rows on each backend (see the module docstring).
POSTGRES = {"match": "= ANY(ARRAY", "close": ")", "lock": "FOR UPDATE SKIP LOCKED"}
SQLITE = {"match": "IN", "close": "", "lock": ""}


def timed_text(sql: str, *names: str) -> TextClause:
    """A text() statement whose named parameters bind as UTC datetimes on every backend
    (SQLite stores datetimes as strings, so the format must match the ORM's)."""
    return text(sql).bindparams(*(bindparam(name, type_=UTCDateTime()) for name in names))


def for_dialect(session: Session, statements: dict[str, TextClause]) -> TextClause:
    return statements[session.get_bind().dialect.name]


_REDISPATCH_SQL = """
    UPDATE {table} SET claimed_until = :lease_until,
        status = CASE WHEN status = 'sending' THEN 'queued' ELSE status END{also}
    WHERE id {match} (
        SELECT id FROM {table}
        WHERE status IN ('queued', 'deferred', 'sending'){unsettled}
          AND (retry_at IS NULL OR retry_at <= :now)
          AND claimed_until < :now
        ORDER BY id
        LIMIT :limit
        {lock}
    ){close}
    RETURNING id
"""


class OutboxRedispatch:
    """The tick's sweep over an outbox table (messages, webhook calls): rows due for
    a retry, rows whose task was lost (a flushed broker), and rows a dead worker
    held. A ``sending`` row found here goes back to ``queued`` so the next task may
    claim it; its attempts already count the lost try. ``claimed_until`` here is
    "dispatched, do not dispatch again before". ``also`` adds SET clauses of the
    table's own (the old row's values are what its expressions see); ``unsettled``
    a condition matching the table's partial index of unfinished rows, if it has one."""

    def __init__(self, table: str, also: str = "", unsettled: str = "") -> None:
        also = f",\n        {also}" if also else ""
        unsettled = f" AND {unsettled}" if unsettled else ""
        self._statements = {
            dialect: timed_text(_REDISPATCH_SQL.format(table=table, also=also, unsettled=unsettled, **shape),
                                "now", "lease_until")
            for dialect, shape in (("postgresql", POSTGRES), ("sqlite", SQLITE))
        }

    def claim(self, session: Session, now: datetime, limit: int, lease: timedelta) -> list[int]:
        params = {"now": now, "lease_until": now + lease, "limit": limit}
        return sorted(row[0] for row in session.execute(for_dialect(session, self._statements), params))
