"""Writing a chunk of imported events: unknown addresses become subscribers, then
the events go in, a repeat of an imported event (same ``dedup_key``) skipped.

PostgreSQL: COPY the chunk into a session-local staging table; resolve the
addresses the account knows (_RESOLVE), insert only the others as subscribers
(_NEW, ``ON CONFLICT (account_id, email) DO NOTHING``, then _RESOLVE again for
any a concurrent writer added first); then the events, joined to those ids by
address, inserted plainly; where one was imported before (the imported rows' unique
key, migration 0037), that insert is rolled back to a savepoint and made again with
``ON CONFLICT DO NOTHING``, which skips it. No row is handled one by one in Python
past the COPY's text, and the statements are right under concurrency (two imports naming
one address, or one file imported twice at once: the second waits on the first's
rows and skips them). Other databases (SQLite, the embedded default, one writer at
a time) look up the known addresses and keys first, then insert what is new with
executemany.

Where the database role may set ``session_replication_role`` (a superuser, or on
PostgreSQL 15+ a role granted ``SET`` on it; docs/operations.md) the per-row
foreign-key checks, about half of a chunk's time, are skipped for the chunk's
statements. What they would lock is locked once instead: the account ``FOR KEY
SHARE``, and the account's IMPORT_LOCK, which every deletion of a subscriber
waits for (migration 0038). So an erasure or an account deletion running at the
same time either waits for the chunk's commit and then removes its events too,
or ran first and the chunk skips its rows, as with the checks; every reference
is right by construction (the job's account, ids just resolved, no message id).
A role without that right gets the checks, and the known subscribers are locked
``FOR KEY SHARE`` as they are resolved, as the checks would lock them.
"""
from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg2.errors

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from audience.event_rows import COPY_NULL, EventRow
from models import Event, EventKey, Subscriber
from models.db import raw_cursor
from models.event import IMPORTED, IS_IMPORTED

# Rows per IN list on the portable path: below SQLite's bound-parameter limit.
LOOKUP = 900

# The statements the import's speed depends on (bench/import_events.py).
_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS pg_temp.event_import_chunk (email text, name text, occurred_at timestamptz,"
    " message_ref text, value float8, properties jsonb, dedup_key text, subscriber_id integer) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS pg_temp.event_import_ids (email text, id integer) ON COMMIT DELETE ROWS"
)
_COLUMNS = "email, name, occurred_at, message_ref, value, properties, dedup_key"
# The chunk's addresses not yet resolved to a subscriber id (by KnownAddresses, or here).
_UNRESOLVED = """SELECT DISTINCT r.email FROM pg_temp.event_import_chunk r WHERE r.subscriber_id IS NULL
                 AND NOT EXISTS (SELECT 1 FROM pg_temp.event_import_ids i WHERE i.email = r.email)"""
# Those the account knows, to ids: one probe of the (account_id, email) index each
# (LATERAL: never a scan of all the account's subscribers, which grow to millions;
# OFFSET 0 keeps it one, where otherwise the planner would fold it into a join, and
# with nested loops off for the chunk that join was a hash join reading them all).
# Run first for the whole chunk, and again for addresses a concurrent writer
# inserted while _NEW ran. Where the chunk's foreign-key checks run, each row is
# locked FOR KEY SHARE, as a check would lock it; where they are skipped, the
# account's IMPORT_LOCK guards them instead (_GUARD).
_RESOLVE = f"""
INSERT INTO pg_temp.event_import_ids (email, id)
SELECT r.email, s.id FROM ({_UNRESOLVED}) r
CROSS JOIN LATERAL (SELECT id FROM subscribers WHERE account_id = %(account_id)s AND email = r.email{{lock}} OFFSET 0) s
"""
# Deleting a subscriber, or changing its address, takes this advisory lock of its
# account, shared, by a trigger (migration 0038); a chunk that skips the checks holds it exclusively,
# so a deletion of a subscriber it names waits for its commit and then removes
# its events too. One lock a chunk, where a lock per subscriber cost a sixth of an
# import's time when every row names another address (each a dirtied page and a
# WAL record). Exclusive, so two imports of one account take turns a chunk at a time.
IMPORT_LOCK = 1_937_008_968
# How many subscribers have been deleted or given another address (migration 0038;
# 0 before the first): read under the lock, it says whether ids a job kept may still be used.
_ADDRESS_CHANGES = "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM subscriber_address_changes)"
# Under the lock: the ids the chunk came with are forgotten if a subscriber was
# deleted or readdressed since they were resolved.
_GUARD = f"""SELECT pg_advisory_xact_lock({IMPORT_LOCK}, %(account_id)s);
UPDATE pg_temp.event_import_chunk SET subscriber_id = NULL
WHERE subscriber_id IS NOT NULL AND {_ADDRESS_CHANGES} <> %(changes)s;"""
_ACCOUNT = "SELECT count(*) FROM (SELECT 1 FROM accounts WHERE id = %(account_id)s FOR KEY SHARE) a;"
# The rest become subscribers (rows of this transaction: nobody else can remove
# them before it commits). Only they are inserted: ON CONFLICT on every known
# address of a chunk cost a probe of the unique index each, a third of the chunk's
# time when a history names each address once a chunk (a time-ordered export). An
# address another transaction inserted meanwhile is skipped by ON CONFLICT (after
# that transaction commits), counted as missing and not kept, and resolved then.
_NEW = f"""
WITH missing AS ({_UNRESOLVED}),
new AS (INSERT INTO subscribers (account_id, email, status, attributes, tags, created_at, updated_at)
        SELECT %(account_id)s, email, 'active', '{{}}'::jsonb, '[]'::jsonb, %(now)s, %(now)s FROM missing
        ON CONFLICT (account_id, email) DO NOTHING RETURNING email, id),
kept AS (INSERT INTO pg_temp.event_import_ids (email, id) SELECT email, id FROM new RETURNING 1)
SELECT (SELECT count(*) FROM missing), (SELECT count(*) FROM kept), {_ADDRESS_CHANGES}
"""
# A repeat of an imported event is skipped by the unique index on the imported
# rows' (dedup_key, occurred_at) (migration 0037), not by a row in event_keys as
# other events' keys are: the trigger that claims those leaves imported rows
# alone. A key another import is writing waits for its commit and is then skipped.
# Rows go in in the file's order (the staging table's, filled by one COPY), so ids
# follow it. A chunk is first inserted plainly (_PLAIN), in a savepoint, and only
# if that meets a key already taken is it rolled back and inserted again with ON
# CONFLICT: on the partitioned table ON CONFLICT's speculative insertion cost a
# quarter to a third of the insert (bench/events_insert.py: 13.2 -> 9.9 us a row,
# and 25 -> 17 at a slower hour), where a history's chunks are almost always new.
# A file imported again fails at its first row, at once.
# (Filtering the known keys first, a probe per row, measured no faster.)
_EVENTS = f"""
INSERT INTO events (account_id, subscriber_id, message_id, name, dedup_key, source, message_ref, properties, value,
                    occurred_at, created_at)
SELECT %(account_id)s, COALESCE(r.subscriber_id, i.id), NULL, r.name, r.dedup_key, '{IMPORTED}', r.message_ref,
       r.properties, r.value, r.occurred_at, %(now)s
FROM pg_temp.event_import_chunk r LEFT JOIN pg_temp.event_import_ids i ON r.subscriber_id IS NULL AND i.email = r.email
ORDER BY r.ctid
"""
_SKIP_TAKEN = f"ON CONFLICT (dedup_key, occurred_at) WHERE {IS_IMPORTED} DO NOTHING"
# The chunk's events, tried plainly: a key already taken raises this.
_PLAIN = "SAVEPOINT import_plain;" + _EVENTS
# Skip the per-row foreign-key checks for the transaction where the role may
# (PostgreSQL 15 added SET privileges on parameters; before it only a superuser
# may set this one). The IFs are nested, not joined by AND: PL/pgSQL prepares an
# expression when it first reaches it, so an older server never parses the call
# to has_parameter_privilege, which it lacks.
_SKIP_ROW_CHECKS_IF_ALLOWED = """
DO $$ BEGIN
    IF current_setting('is_superuser') = 'on' THEN
        PERFORM set_config('session_replication_role', 'replica', true);
    ELSIF current_setting('server_version_num')::int >= 150000 THEN
        IF has_parameter_privilege('session_replication_role', 'SET') THEN
            PERFORM set_config('session_replication_role', 'replica', true);
        END IF;
    END IF;
END $$"""
_SKIPS = "SELECT current_setting('session_replication_role') = 'replica'"
# A chunk's settings, in one round trip (each round trip also waits for the GIL the
# checking thread holds, audience.event_import). No JIT: a chunk's cost estimates
# can reach its threshold once the statistics lag the import, and compiling costs
# about 20 ms a chunk. The events' join is a hash join in memory whatever the
# statistics say: the temporary tables have none, a nested loop over the chunk per
# address took seconds a chunk, and a merge join sorted both sides first, 30 ms of a
# chunk naming 25,000 addresses (the LATERAL probes of _RESOLVE stay a loop).
_PREPARE = _STAGING + """;
TRUNCATE pg_temp.event_import_chunk, pg_temp.event_import_ids;
SET LOCAL jit = off; SET LOCAL work_mem = '64MB'; SET LOCAL enable_nestloop = off; SET LOCAL enable_mergejoin = off;
""" + _SKIP_ROW_CHECKS_IF_ALLOWED + ";" + _SKIPS
# The rest of the transaction (the job's counts) is checked as usual.
_CHECKED_AGAIN = ("SELECT set_config('session_replication_role', 'origin', true)"
                  " WHERE current_setting('session_replication_role') <> 'origin'")


def may_skip_row_checks(session: Session) -> bool:
    """Whether a chunk written through this session skips the per-row checks: the
    chunk's own decision, tried in a savepoint that is rolled back (PostgreSQL)."""
    trial = session.begin_nested()
    try:
        session.execute(text(_SKIP_ROW_CHECKS_IF_ALLOWED))
        return bool(session.execute(text(_SKIPS)).scalar())
    finally:
        trial.rollback()


class KnownAddresses:
    """The subscriber ids a job's committed chunks resolved, by address, so that a
    later chunk need not look them up (a time-ordered history names each address in
    chunk after chunk: those lookups were a fifth of its import's time). Used only
    by chunks that hold the account's IMPORT_LOCK, and trusted only while no
    subscriber has been deleted or given another address since (_ADDRESS_CHANGES,
    read under the lock): after one, every address is looked up again. A chunk's
    ids wait in ``pending`` until its transaction commits (``committed``): one
    rolled back would leave ids of subscribers that were never created."""

    LIMIT = 1_000_000  # addresses kept (about 140 MB: 70 for half a million); past it the rest are looked up

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.pending: list[tuple[str, int]] = []
        self.changes = -1  # not read yet

    def committed(self) -> None:
        """The chunks written since the last call are committed: keep their ids."""
        room = self.LIMIT - len(self.ids)
        if room > 0:
            self.ids.update(self.pending[:room])
        self.pending = []

    def resolved(self, changes: int, read_pairs: Callable[[], list[tuple[str, int]]]) -> None:
        """A chunk resolved more addresses (``read_pairs``, read only while there is
        room) with ``changes`` read under its lock: what was kept before a change
        is forgotten."""
        if changes != self.changes:
            self.ids.clear()
            self.pending = []
            self.changes = changes
        if len(self.ids) + len(self.pending) < self.LIMIT:
            self.pending.extend(read_pairs())


def _insert_events(cursor: Any, params: dict[str, Any]) -> int:
    """The chunk's events: all of them, or, where some key is taken, the others."""
    try:
        cursor.execute(_PLAIN, params)
    except psycopg2.errors.UniqueViolation:
        cursor.execute("ROLLBACK TO SAVEPOINT import_plain;" + _EVENTS + _SKIP_TAKEN, params)
        return int(cursor.rowcount)
    inserted = int(cursor.rowcount)
    cursor.execute("RELEASE SAVEPOINT import_plain")
    return inserted


def _write_postgresql(session: Session, account_id: int, rows: list[EventRow], now: datetime,
                      known: KnownAddresses | None) -> tuple[int, int]:
    with raw_cursor(session) as cursor:
        cursor.execute(_PREPARE)
        skips_checks = cursor.fetchone()[0]
        known = known if skips_checks else None
        found = [known.ids.get(r.email) for r in rows] if known is not None and known.ids else []
        hits = len(found) - found.count(None)
        # The lines are written again with the ids only where most rows have one (a
        # history in time order); where each address's rows are together few do.
        if hits and hits >= len(rows) // 2:
            copy = f"COPY pg_temp.event_import_chunk ({_COLUMNS}, subscriber_id) FROM STDIN"
            lines = "".join([f"{r.line[:-1]}\t{COPY_NULL if i is None else i}\n" for r, i in zip(rows, found)])
        else:
            copy = f"COPY pg_temp.event_import_chunk ({_COLUMNS}) FROM STDIN"
            lines = "".join([r.line for r in rows])
        # One read of the whole text: psycopg2 reads 8 kB at a time by default, each
        # read waiting for the GIL.
        cursor.copy_expert(copy, io.StringIO(lines), size=len(lines) + 1)
        params = {"account_id": account_id, "now": now, "changes": known.changes if known else -1}
        resolve = _RESOLVE.format(lock="" if skips_checks else " FOR KEY SHARE")
        cursor.execute(_ACCOUNT + (_GUARD if skips_checks else "") + resolve + ";" + _NEW, params)
        missing, created, changes = cursor.fetchone()
        if created < missing:  # another writer added some of them first
            cursor.execute(resolve, params)
        inserted = _insert_events(cursor, params)
        cursor.execute(_CHECKED_AGAIN)
        if known is not None:
            def read_pairs() -> list[tuple[str, int]]:
                cursor.execute("SELECT email, id FROM pg_temp.event_import_ids")
                return cursor.fetchall()

            known.resolved(changes, read_pairs)
        return inserted, created


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


def write_events(session: Session, account_id: int, rows: list[EventRow], now: datetime,
                 known: KnownAddresses | None = None) -> tuple[int, int]:
    """Write ``rows``; returns (events inserted, subscribers created). Rows whose
    event was imported before are skipped (the difference is the duplicates).
    ``known``: the job's addresses resolved so far, used and added to (PostgreSQL)."""
    if not rows:
        return 0, 0
    if session.get_bind().dialect.name == "postgresql":
        return _write_postgresql(session, account_id, rows, now, known)
    return _write_portable(session, account_id, rows, now)
