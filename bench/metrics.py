"""Benchmark of a /metrics scrape's database work (issue: hardening, item 12).

Seeds, on a database of its own, 1,000,000 messages (95% sent, 3% failed, 1%
suppressed, 1% queued or deferred) and 200,000 enrollments (90% completed or exited,
10% active or paused), runs ANALYZE as autovacuum would, then times the database
collector's read (every gauge of one scrape) and prints each status query's plan.

Run: ``.venv/bin/python -m bench.metrics`` (PostgreSQL on 127.0.0.1);
``--messages N`` seeds N messages instead.
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = secrets.token_hex(3)
DB = f"eseq_bench_{RUN}"
os.environ.update({"DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{DB}", "ESEQ_LOG_LEVEL": "WARNING",
                   "SECRET_KEY": "bench-secret-key-0123456789abcdef"})
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from models import db  # noqa: E402
from observability import metrics  # noqa: E402
from tests.support import factories  # noqa: E402
from tests.support.database import fresh_database  # noqa: E402


def seed(messages: int) -> None:
    account_id = factories.account("Bench")
    subscriber_id = factories.subscribers(account_id, 1)[0]
    sequence_id = factories.sequence(account_id, [{"type": "delay", "seconds": 60}])
    enrollments = messages // 5
    with db.get_engine().begin() as conn:
        conn.execute(text(
            "INSERT INTO messages (account_id, subscriber_id, sequence_id, idempotency_key, status, to_email, subject, "
            "attempts, crashes, meta, created_at, updated_at) "
            "SELECT :a, :s, :q, 'bench-' || i, CASE WHEN i % 100 < 95 THEN 'sent' WHEN i % 100 < 98 THEN 'failed' "
            "WHEN i % 100 = 98 THEN 'suppressed' WHEN i % 200 = 99 THEN 'queued' ELSE 'deferred' END, "
            "'user' || i || '@bench.test', 'Hello there, a subject of typical length', 1, 0, '{}', now(), now() "
            "FROM generate_series(1, :n) AS i"), {"a": account_id, "s": subscriber_id, "q": sequence_id, "n": messages})
        conn.execute(text(
            "INSERT INTO enrollments (account_id, sequence_id, subscriber_id, instance_key, run, status, current_step, "
            "state, enrolled_at, updated_at) "
            "SELECT :a, :q, :s, i::text, 1, CASE WHEN i % 10 < 6 THEN 'completed' WHEN i % 10 < 9 THEN 'exited' "
            "WHEN i % 20 = 9 THEN 'active' ELSE 'paused' END, 0, '{}', now(), now() "
            "FROM generate_series(1, :n) AS i"),
            {"a": account_id, "s": subscriber_id, "q": sequence_id, "n": enrollments})
    with db.get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE messages"))
        conn.execute(text("VACUUM ANALYZE enrollments"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args()
    with fresh_database(DB) as url:
        db.configure(url)
        try:
            started = time.perf_counter()
            seed(args.messages)
            print(f"seeded {args.messages:,} messages and {args.messages // 5:,} enrollments "
                  f"in {time.perf_counter() - started:.1f} s")
            collector = metrics.DatabaseCollector(db.get_engine, timeout_ms=60_000)
            times = []
            for _ in range(args.scrapes):
                started = time.perf_counter()
                list(collector.collect())
                times.append((time.perf_counter() - started) * 1000)
            print(f"database gauges of one scrape: median {statistics.median(times):.1f} ms, "
                  f"max {max(times):.1f} ms over {args.scrapes} scrapes")
            for family in collector.collect():
                if family.name in ("eseq_messages", "eseq_enrollments"):
                    shown = ", ".join(f"{s.labels['status']}={s.value:,.0f}" for s in family.samples)
                    print(f"  {family.name}: {shown}")
            with db.get_engine().connect() as conn:
                # Before this change the module had only _QUERIES, whose first two were the status counts.
                queries = getattr(metrics, "status_queries", lambda _d: [q for _, q, _ in metrics._QUERIES[:2]])
                for sql in queries(conn.dialect.name):
                    plan = [row[0] for row in conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"))]
                    print(f"\n{sql}\n  " + "\n  ".join(plan))
        finally:
            db.get_engine().dispose()


if __name__ == "__main__":
    main()
