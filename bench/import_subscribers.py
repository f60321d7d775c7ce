"""Benchmark: import 100,000 subscribers from CSV into PostgreSQL, as a worker does.

Creates a throwaway database (like tests/conftest.py), migrates it, runs the import
twice (all rows new, then all rows known: the re-import path) and prints rows/s.

    python -m bench.import_subscribers [--rows 100000] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from models import db  # noqa: E402
from models.base import utcnow as models_utcnow  # noqa: E402
from tests.support.database import fresh_database  # noqa: E402


def make_csv(rows: int) -> bytes:
    lines = ["email,first_name,last_name,timezone,tags,plan,city"]
    zones = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "")
    for i in range(rows):
        lines.append(f"user{i}@example.com,First{i},Last{i},{zones[i % 4]},news;vip{i % 7},"
                     f"{('free', 'pro')[i % 2]},City{i % 100}")
    return ("\n".join(lines) + "\n").encode()


def run_once(account_id: int, payload: bytes) -> tuple[float, dict[str, int]]:
    from audience.imports import claim_import, create_import_job, run_import
    from models import Job, utcnow

    start = time.perf_counter()
    with db.session_scope() as s:
        job_id = create_import_job(s, account_id, payload, "csv", utcnow()).id
    with db.session_scope() as s:
        claim_import(s, job_id, models_utcnow())
    with db.session_scope() as s:
        for _ in run_import(s, job_id):
            s.commit()
    elapsed = time.perf_counter() - start
    with db.session_scope() as s:
        job = s.get(Job, job_id)
        counts = {"created": job.created_count, "updated": job.updated_count, "errors": job.error_count}
    return elapsed, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--admin-url", default=os.environ.get(
        "ESEQ_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()

    with fresh_database(f"eseq_bench_{secrets.token_hex(4)}", args.admin_url) as url:
        db.configure(url)
        from accounts.keys import create_account
        from models import Subscriber

        with db.session_scope() as s:
            account_id = create_account(s, "Bench", "bench@example.com", "Bench")[0].id
        payload = make_csv(args.rows)
        print(f"payload: {args.rows} rows, {len(payload) / 1e6:.1f} MB")
        for label in ("first import (inserts)", "re-import (updates)"):
            elapsed, counts = run_once(account_id, payload)
            print(f"{label}: {elapsed:.2f} s, {args.rows / elapsed:,.0f} rows/s, {counts}")
        with db.session_scope() as s:
            stored = s.scalar(select(func.count()).select_from(Subscriber))
        assert stored == args.rows, f"expected {args.rows} subscribers, found {stored}"
        db.get_engine().dispose()


if __name__ == "__main__":
    main()
