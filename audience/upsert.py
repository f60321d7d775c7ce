"""Writing a chunk of import rows: insert new addresses, update known ones.

PostgreSQL does it in one statement per chunk, ``INSERT ... ON CONFLICT (account_id,
email) DO UPDATE``, which is also right under concurrency (two imports of one
address cannot both insert it). Other databases (SQLite, the embedded default) take
the portable path: read the chunk's known addresses, merge in Python, then one
executemany INSERT and one executemany UPDATE. SQLite lets one writer in at a time,
so the read-then-write is safe there apart from a writer slipping in between our
read and our first write, which fails the chunk on the unique key instead of
corrupting anything.

Merge rules (both paths): a name or timezone the row gives replaces the stored one,
one it leaves out is kept; attributes merge key by key; tags are added to the
existing ones; ``status`` is never touched, so an import can never re-subscribe
someone who unsubscribed, bounced or complained.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, literal_column, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from audience.fields import merge_tags
from audience.payloads import ImportRow
from models import Subscriber

CHUNK = 2000  # rows per statement: ~20k bind parameters, far below both backends' limits

_table = Subscriber.__table__


def _postgresql_upsert() -> Any:
    """The statement whose speed the import depends on. ``xmax = 0`` holds only for a
    row version this statement inserted, so RETURNING it counts created vs updated
    without a second query; the jsonb ``-`` drops tags the row already has."""
    stmt = postgresql.insert(_table)
    c, excluded = _table.c, stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[c.account_id, c.email],
        set_={
            "first_name": func.coalesce(excluded.first_name, c.first_name),
            "last_name": func.coalesce(excluded.last_name, c.last_name),
            "timezone": func.coalesce(excluded.timezone, c.timezone),
            "attributes": literal_column("subscribers.attributes || excluded.attributes"),
            "tags": literal_column(
                "subscribers.tags || (excluded.tags - ARRAY(SELECT jsonb_array_elements_text(subscribers.tags)))"),
            "updated_at": excluded.updated_at,
        },
    ).returning(literal_column("xmax = 0").label("inserted"))


_UPSERT = _postgresql_upsert()


def merge_duplicates(rows: list[ImportRow]) -> list[ImportRow]:
    """One row per address, later rows layered over earlier ones by the merge rules:
    one statement may not touch the same row twice (PostgreSQL refuses it)."""
    merged: dict[str, ImportRow] = {}
    for row in rows:
        seen = merged.get(row.email)
        if seen is None:
            merged[row.email] = row
            continue
        merged[row.email] = replace(
            seen,
            first_name=row.first_name or seen.first_name,
            last_name=row.last_name or seen.last_name,
            timezone=row.timezone or seen.timezone,
            tags=merge_tags(seen.tags, row.tags),
            attributes={**seen.attributes, **row.attributes},
        )
    return list(merged.values())


def _values(account_id: int, row: ImportRow, now: datetime) -> dict[str, Any]:
    return {"account_id": account_id, "email": row.email, "first_name": row.first_name,
            "last_name": row.last_name, "timezone": row.timezone, "status": "active",
            "attributes": row.attributes, "tags": row.tags, "created_at": now, "updated_at": now}


def _upsert_postgresql(session: Session, account_id: int, rows: list[ImportRow], now: datetime) -> int:
    params = [_values(account_id, row, now) for row in rows]
    return sum(1 for inserted in session.scalars(_UPSERT, params) if inserted)


def _upsert_portable(session: Session, account_id: int, rows: list[ImportRow], now: datetime) -> int:
    c = _table.c
    known = {r.email: r for r in session.execute(
        select(c.id, c.email, c.first_name, c.last_name, c.timezone, c.attributes, c.tags)
        .where(c.account_id == account_id, c.email.in_([row.email for row in rows])))}
    inserts = [_values(account_id, row, now) for row in rows if row.email not in known]
    updates = [{
        "b_id": old.id,
        "b_first_name": row.first_name or old.first_name,
        "b_last_name": row.last_name or old.last_name,
        "b_timezone": row.timezone or old.timezone,
        "b_attributes": {**(old.attributes or {}), **row.attributes},
        "b_tags": merge_tags(list(old.tags or []), row.tags),
        "b_updated_at": now,
    } for row in rows if (old := known.get(row.email)) is not None]
    if inserts:
        session.execute(insert(_table), inserts)
    if updates:
        session.execute(update(_table).where(c.id == bindparam("b_id")).values(
            first_name=bindparam("b_first_name"), last_name=bindparam("b_last_name"),
            timezone=bindparam("b_timezone"), attributes=bindparam("b_attributes", type_=c.attributes.type),
            tags=bindparam("b_tags", type_=c.tags.type), updated_at=bindparam("b_updated_at")), updates)
    return len(inserts)


def upsert_rows(session: Session, account_id: int, rows: list[ImportRow], now: datetime) -> tuple[int, int]:
    """Write ``rows`` (any number, duplicates allowed); returns (created, updated),
    where every valid row counts once, a repeat of an address as an update."""
    created = 0
    for start in range(0, len(rows), CHUNK):
        chunk = merge_duplicates(rows[start:start + CHUNK])
        if session.get_bind().dialect.name == "postgresql":
            created += _upsert_postgresql(session, account_id, chunk, now)
        else:
            created += _upsert_portable(session, account_id, chunk, now)
    return created, len(rows) - created
