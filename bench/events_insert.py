"""Benchmark: the bare statement a history import's chunk ends in, with and without
``ON CONFLICT DO NOTHING``, on the partitioned ``events`` table.

Builds a throwaway database with the real migrations, generates ``--rows`` imported
events in time order (an address per ten rows, addresses in turn) in a table of
their own, then inserts them into ``events`` a chunk at a time, each chunk in its
own transaction with the per-row foreign-key checks skipped, as
``audience.event_writer`` does: once as the import's fallback writes them (``ON
CONFLICT DO NOTHING`` on the imported rows' unique key), once plainly (the import's
first try). Each pass starts from an empty table after a checkpoint, and prints µs a
row and WAL bytes a row. No Python between rows: this is the database's own cost.

    python -m bench.events_insert [--rows 500000] [--chunk 50000] [--rounds 2]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg2  # noqa: E402

from models.event import IS_IMPORTED  # noqa: E402
from tests.support.database import empty_database, migrate  # noqa: E402

_SOURCE = """CREATE UNLOGGED TABLE import_source AS
SELECT i, (ARRAY['sent','delivered','opened','opened','clicked','sent','delivered','opened','unsubscribed','purchase'])
          [i %% 10 + 1] AS name,
       timestamptz '2024-01-01' + make_interval(secs => 7 * i) AS occurred_at,
       1 + i %% (%(rows)s / 10) AS subscriber_id
FROM generate_series(0, %(rows)s - 1) i;
ALTER TABLE import_source ADD COLUMN dedup_key text;
UPDATE import_source SET dedup_key = 'import:1:' || lpad(to_hex(extract(epoch FROM occurred_at)::bigint), 10, '0')
                                    || ':' || md5(i::text)"""
_INSERT = """INSERT INTO events (account_id, subscriber_id, message_id, name, dedup_key, source, message_ref,
                    properties, value, occurred_at, created_at)
SELECT 1, subscriber_id, NULL, name, dedup_key, 'import', 'msg' || (i / 10) || '@old.example', '{{}}'::jsonb, NULL,
       occurred_at, now()
FROM import_source WHERE i >= %(start)s AND i < %(end)s ORDER BY i {conflict}"""
_ON_CONFLICT = f"ON CONFLICT (dedup_key, occurred_at) WHERE {IS_IMPORTED} DO NOTHING"


def run(cursor: psycopg2.extensions.cursor, rows: int, chunk: int, conflict: str) -> tuple[float, float]:
    """µs a row and WAL bytes a row of inserting every row, a chunk a transaction."""
    cursor.execute("TRUNCATE events, event_keys; CHECKPOINT; SELECT pg_current_wal_lsn()")
    start_lsn = cursor.fetchone()[0]
    started = time.perf_counter()
    for start in range(0, rows, chunk):
        cursor.execute("BEGIN; SET LOCAL session_replication_role = replica")
        cursor.execute(_INSERT.format(conflict=conflict), {"start": start, "end": start + chunk})
        cursor.execute("COMMIT")
    elapsed = time.perf_counter() - started
    cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (start_lsn,))
    return elapsed / rows * 1e6, float(cursor.fetchone()[0]) / rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=2, help="passes of each form, alternated")
    args = parser.parse_args()
    with empty_database(f"eseq_bench_events_insert_{int(time.time())}") as url:
        migrate(url)
        connection = psycopg2.connect(url)
        connection.autocommit = True
        cursor = connection.cursor()
        cursor.execute(_SOURCE, {"rows": args.rows})
        cursor.execute("VACUUM ANALYZE import_source")
        for _ in range(args.rounds):
            for label, conflict in (("ON CONFLICT DO NOTHING", _ON_CONFLICT), ("plain", "")):
                per_row, wal = run(cursor, args.rows, args.chunk, conflict)
                print(f"{label:24s} {args.rows:,} rows: {per_row:5.2f} µs a row, WAL {wal:4.0f} B a row", flush=True)
        connection.close()


if __name__ == "__main__":
    main()
