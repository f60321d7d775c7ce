"""Writing a chunk of imported events: unknown addresses become subscribers, then
the events go in, a repeat of an imported event (same ``dedup_key``) skipped.

PostgreSQL: COPY the chunk into a session-local staging table, then two
INSERT ... SELECT statements: subscribers ``ON CONFLICT (account_id, email) DO
NOTHING``, and events joined to them by address, whose keys the trigger on
events claims in ``event_keys`` (migration 0034), skipping a row whose key was
taken. No row is handled one by one in Python past the COPY's text, and both
statements are right under concurrency (two imports naming one address, or one
file imported twice at once: the second waits on the first's keys and skips
them). Other databases (SQLite, the embedded default, one writer at a time) look
up the known addresses and keys first, then insert what is new with executemany.
"""
from __future__ import annotations

import io
import json
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from audience.event_rows import EventRow
from models import Event, EventKey, Subscriber
from models.event import IMPORTED

# Rows per IN list on the portable path: below SQLite's bound-parameter limit.
LOOKUP = 900

# The statements the import's speed depends on (bench/import_events.py).
_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS pg_temp.event_import_rows (email text, name text, occurred_at timestamptz,"
    " message_ref text, value float8, properties jsonb, dedup_key text) ON COMMIT DELETE ROWS"
)
_SUBSCRIBERS = """
INSERT INTO subscribers (account_id, email, status, attributes, tags, created_at, updated_at)
SELECT DISTINCT %(account_id)s, email, 'active', '{}'::jsonb, '[]'::jsonb, %(now)s, %(now)s FROM pg_temp.event_import_rows
ON CONFLICT (account_id, email) DO NOTHING
"""
# The keys are claimed in event_keys set-based, one row per key in key order (the
# primary key's pages in turn), and only the rows whose key was claimed go into
# events. The trigger that claims keys row by row for other writers (migration
# 0034) is told to stand aside for this one statement, so no PL/pgSQL call is
# made per row. A key another import holds waits for its commit and is then
# skipped, as ON CONFLICT DO NOTHING does. Each event also writes its key here, a
# second row: alternated runs on a loaded machine had the import a third slower
# than with the key unique on events, a quiet one as fast or faster
# (docs/benchmarks.md, "Bounded tables").
_EVENTS = f"""
WITH claimed AS (
    INSERT INTO event_keys (dedup_key, account_id, occurred_at)
    SELECT DISTINCT ON (r.dedup_key) r.dedup_key, %(account_id)s, r.occurred_at
    FROM pg_temp.event_import_rows r JOIN subscribers s ON s.account_id = %(account_id)s AND s.email = r.email
    ORDER BY r.dedup_key
    ON CONFLICT DO NOTHING RETURNING dedup_key)
INSERT INTO events (account_id, subscriber_id, message_id, name, dedup_key, source, message_ref, properties, value,
                    occurred_at, created_at)
SELECT DISTINCT ON (r.dedup_key) %(account_id)s, s.id, NULL, r.name, r.dedup_key, '{IMPORTED}', r.message_ref,
       r.properties, r.value, r.occurred_at, %(now)s
FROM pg_temp.event_import_rows r JOIN claimed c ON c.dedup_key = r.dedup_key
JOIN subscribers s ON s.account_id = %(account_id)s AND s.email = r.email
ORDER BY r.dedup_key
"""
_KEYS_CLAIMED = "SELECT set_config('eseq.event_keys_claimed', %s, true)"


def _write_postgresql(session: Session, account_id: int, rows: list[EventRow], now: datetime) -> tuple[int, int]:
    buffer = io.StringIO("".join([r.line for r in rows]))
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_STAGING)
        cursor.execute("TRUNCATE pg_temp.event_import_rows")
        # No JIT: a chunk's cost estimates can reach its threshold once the
        # statistics lag the import, and compiling costs about 20 ms a chunk.
        cursor.execute("SET LOCAL jit = off")
        cursor.copy_expert("COPY pg_temp.event_import_rows FROM STDIN", buffer)
        params = {"account_id": account_id, "now": now}
        cursor.execute(_SUBSCRIBERS, params)
        created = cursor.rowcount
        # Local to the transaction: a failure rolls it back with everything else.
        cursor.execute(_KEYS_CLAIMED, ("on",))
        cursor.execute(_EVENTS, params)
        inserted = cursor.rowcount
        cursor.execute(_KEYS_CLAIMED, ("off",))
        return inserted, created
    finally:
        cursor.close()


def _write_portable(session: Session, account_id: int, rows: list[EventRow], now: datetime) -> tuple[int, int]:
    s, k = Subscriber.__table__.c, EventKey.__table__.c

    def look_up(emails: list[str]) -> None:
        for start in range(0, len(emails), LOOKUP):
            part = emails[start:start + LOOKUP]
            ids.update(session.execute(select(s.email, s.id).where(s.account_id == account_id,
                                                                   s.email.in_(part))).all())

    emails = list(dict.fromkeys(r.email for r in rows))
    ids: dict[str, int] = {}
    look_up(emails)
    new = [m for m in emails if m not in ids]
    if new:
        session.execute(insert(Subscriber.__table__), [
            {"account_id": account_id, "email": m, "status": "active", "attributes": {}, "tags": [],
             "created_at": now, "updated_at": now} for m in new])
        look_up(new)
    keys = list(dict.fromkeys(r.dedup_key for r in rows))
    seen: set[str] = set()
    for start in range(0, len(keys), LOOKUP):
        seen.update(session.scalars(select(k.dedup_key).where(k.dedup_key.in_(keys[start:start + LOOKUP]))))
    values = []
    for r in rows:
        if r.dedup_key in seen:
            continue
        seen.add(r.dedup_key)
        values.append({"account_id": account_id, "subscriber_id": ids[r.email], "message_id": None, "name": r.name,
                       "dedup_key": r.dedup_key, "source": IMPORTED, "message_ref": r.message_ref,
                       "properties": json.loads(r.properties), "value": r.value, "occurred_at": r.occurred_at,
                       "created_at": now})
    if values:
        session.execute(insert(Event.__table__), values)
    return len(values), len(new)


def write_events(session: Session, account_id: int, rows: list[EventRow], now: datetime) -> tuple[int, int]:
    """Write ``rows``; returns (events inserted, subscribers created). Rows whose
    event was imported before are skipped (the difference is the duplicates)."""
    if not rows:
        return 0, 0
    if session.get_bind().dialect.name == "postgresql":
        return _write_postgresql(session, account_id, rows, now)
    return _write_portable(session, account_id, rows, now)
