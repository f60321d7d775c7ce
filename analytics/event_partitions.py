"""Monthly partitions of ``events`` on PostgreSQL (migration 0034).

One partition per calendar month (UTC) of ``occurred_at``, named ``events_YYYY_MM``,
plus ``events_default`` for rows no month takes (imported history older than the
first partition, or an instant far ahead). Beat creates the coming months ahead of
time (``ensure_partitions``), so new events never land in the DEFAULT partition in
normal running; when some did (an import from the future), the month's rows are
moved out of it before the month is attached, as PostgreSQL refuses a partition
whose range the DEFAULT one already holds rows of.

A month is pruned by dropping its partition (analytics.retention): a catalog change
taking a moment, where deleting its rows would rewrite indexes and leave dead tuples
for vacuum. While its DDL waits for its lock on ``events`` behind a reader, the
event writers queue behind it; so it waits at most ``DROP_LOCK_TIMEOUT`` a try, and
tries again a few times after a pause (each try in a savepoint), then gives up until
the next run. ``DETACH PARTITION ... CONCURRENTLY``, which would not queue them at
all, is refused by PostgreSQL on a table with a DEFAULT partition, and ours has one.
SQLite has no partitions: every function here does nothing there.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from time import sleep

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

MONTHS_AHEAD = 3
DEFAULT = "events_default"
# How long a partition's creation waits for its lock on events before giving up this run.
LOCK_TIMEOUT = "2s"
# A drop's tries: each waits at most DROP_LOCK_TIMEOUT for its lock (the writers that
# come meanwhile wait behind it that long at most), then DROP_PAUSE seconds to the next.
DROP_LOCK_TIMEOUT = "100ms"
DROP_TRIES = 10
DROP_PAUSE = 0.5
# PostgreSQL's SQLSTATE for a lock not had within lock_timeout.
LOCK_NOT_AVAILABLE = "55P03"


@dataclass(frozen=True)
class Partition:
    """A month's partition: its rows have ``start <= occurred_at < end``."""

    name: str
    start: datetime
    end: datetime


def month_start(day: date, add: int = 0) -> date:
    """The first day of ``day``'s month, ``add`` months on."""
    months = day.year * 12 + day.month - 1 + add
    return date(months // 12, months % 12 + 1, 1)


def _instant(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def partition_for(month: date) -> Partition:
    """The partition of ``month`` (its first day), as migration 0034 names and bounds it."""
    return Partition(f"events_{month:%Y_%m}", _instant(month), _instant(month_start(month, 1)))


def is_partitioned(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def month_partitions(session: Session) -> list[Partition]:
    """Events' monthly partitions, oldest first (the DEFAULT one left out)."""
    if not is_partitioned(session):
        return []
    names = session.scalars(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'events'::regclass AND c.relname ~ '^events_[0-9]{4}_[0-9]{2}$' ORDER BY c.relname"))
    return [partition_for(date(int(name[7:11]), int(name[12:14]), 1)) for name in names]


def ensure_partitions(session: Session, now: datetime, ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the partitions of this month and the next ``ahead`` ones that are
    missing, in the caller's transaction; the names created."""
    if not is_partitioned(session):
        return []
    have = {p.name for p in month_partitions(session)}
    created = []
    session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    for add in range(ahead + 1):
        partition = partition_for(month_start(now.date(), add))
        if partition.name not in have:
            create_partition(session, partition)
            created.append(partition.name)
    return created


def create_partition(session: Session, partition: Partition) -> None:
    """Attach ``partition``, moving into it the rows of its month the DEFAULT one holds."""
    bounds = {"start": partition.start, "end": partition.end}
    stray = session.execute(text(f"SELECT EXISTS (SELECT 1 FROM {DEFAULT} WHERE occurred_at >= :start"
                                 " AND occurred_at < :end)"), bounds).scalar()
    values = f"FOR VALUES FROM ('{partition.start.isoformat()}') TO ('{partition.end.isoformat()}')"
    if not stray:
        session.execute(text(f"CREATE TABLE {partition.name} PARTITION OF events {values}"))
        return
    # Rows of this month already sit in DEFAULT: move them into a table of their own,
    # then attach it (which builds its indexes and checks its rows against the bounds).
    session.execute(text(f"CREATE TABLE {partition.name} (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
    session.execute(text(
        f"WITH moved AS (DELETE FROM {DEFAULT} WHERE occurred_at >= :start AND occurred_at < :end RETURNING *)"
        f" INSERT INTO {partition.name} SELECT * FROM moved"), bounds)
    session.execute(text(f"ALTER TABLE events ATTACH PARTITION {partition.name} {values}"))


def drop_partition(session: Session, partition: Partition, tries: int = DROP_TRIES, pause: float = DROP_PAUSE) -> bool:
    """Detach and drop ``partition`` in the caller's transaction; False when no try
    had its lock in time (the transaction stays usable: each try is a savepoint)."""
    session.execute(text(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'"))
    for attempt in range(tries):
        if attempt:
            sleep(pause)
        try:
            with session.begin_nested():
                session.execute(text(f"ALTER TABLE events DETACH PARTITION {partition.name}"))
                session.execute(text(f"DROP TABLE {partition.name}"))
            return True
        except OperationalError as error:
            if getattr(error.orig, "pgcode", None) != LOCK_NOT_AVAILABLE:
                raise
    return False
