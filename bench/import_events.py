"""Benchmark: a history import of events into PostgreSQL, end to end.

Creates a throwaway database (like tests/conftest.py) and, for each size given,
writes a CSV history to a temporary file (one address per 10 rows, names from the
platform's vocabulary plus "purchase" rows with a value and properties, a
message_ref on the message events), then measures from the upload to the job
completed: ``POST /api/v1/events/import`` through the Flask app in process, its
body streamed from the file, then the job run in process exactly as the
``audience.import_events`` task runs it. Prints both phases and rows/s; then the
same file again (every row a duplicate), and the time the rollups' fold takes to
walk past the imported events. Each phase prints this process's peak RSS while it
ran (the upload's is the web side's, the job's the worker's), and the job its CPU
per row in Python (the checks) and in PostgreSQL (the writes, all its processes): on a
machine whose speed drifts, the two side by side say which half a change moved.

    python -m bench.import_events [--rows 1000000 5000000] [--no-fold] [--once] [--interleaved]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = secrets.token_hex(3)
os.environ.update({"REDIS_URL": "redis://127.0.0.1:6379/0", "ESEQ_BROKER_PREFIX": f"eseq-bench-{RUN}:",
                   "SECRET_KEY": "bench-secret-key-0123456789abcdef", "ESEQ_LOG_LEVEL": "WARNING",
                   "ESEQ_ADMIN_TOKEN": "bench-admin-token-0123456789abcdef", "ESEQ_RATE_LIMIT": "1000000 per minute"})
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench import PeakRss, postgres_cpu  # noqa: E402
from models import db  # noqa: E402
from tests.support.database import fresh_database  # noqa: E402

NAMES = ("sent", "delivered", "opened", "opened", "clicked", "sent", "delivered", "opened", "unsubscribed", "purchase")


def write_history(path: Path, rows: int, offset: int, interleaved: bool = False) -> int:
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    people = max(rows // 10, 1)
    with path.open("w") as out:
        out.write("email,name,occurred_at,message_ref,value,properties\n")
        for i in range(rows):
            name = NAMES[i % 10]
            moment = (start + timedelta(seconds=7 * i + offset)).isoformat()
            person = f"user{i % people if interleaved else (i // 10) % people}@example.com"
            if name == "purchase":
                out.write(f'{person},purchase,{moment},,{(i % 97) + 0.5},"{{""order"": {i}}}"\n')
            else:
                out.write(f"{person},{name},{moment},msg{i // 10}@old.example,,\n")
    return path.stat().st_size


def run_once(client, headers: dict[str, str], path: Path) -> tuple[float, float, dict, PeakRss, PeakRss,
                                                                  tuple[float, float]]:
    """Upload, then run the job; with this process's peak RSS during each (the web
    request's, then the worker's: one process here, so each is what that side adds),
    and the job's CPU seconds: this process's (the checks) and PostgreSQL's
    (the writes: every PostgreSQL process of this host, which the job's pooled
    connections and the server's WAL writer are; run nothing else on the server)."""
    from audience import event_import
    from audience.imports import claim_import
    from models import Job, utcnow

    start = time.perf_counter()
    with PeakRss() as web, path.open("rb") as body:
        # input_stream, not data: the test client reads a file given as data whole
        # into memory, which the web side's RSS would then count.
        response = client.post("/api/v1/events/import", input_stream=body, content_length=path.stat().st_size,
                               content_type="text/csv", headers=headers)
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["job_id"]
    uploaded = time.perf_counter()
    with PeakRss() as worker:
        with db.session_scope() as s:
            assert claim_import(s, job_id, utcnow(), kind=event_import.KIND)
        with db.session_scope() as s:
            cpu = time.process_time(), postgres_cpu()
            for _ in event_import.run_event_import(s, job_id):
                s.commit()
            cpu = time.process_time() - cpu[0], postgres_cpu() - cpu[1]
    done = time.perf_counter()
    with db.session_scope() as s:
        job = s.get(Job, job_id)
        counts = {"status": job.status, "processed": job.processed, "errors": job.error_count, **job.result}
    return uploaded - start, done - start, counts, web, worker, cpu


def fold_all(account_id: int) -> tuple[float, int]:
    from analytics.rollups import fold_chunk
    from models import utcnow

    start, events = time.perf_counter(), 0
    while True:
        with db.session_scope() as s:
            fold = fold_chunk(s, account_id, utcnow())
        events += fold.events if fold else 0
        if fold is None or fold.caught_up:
            return time.perf_counter() - start, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--no-fold", action="store_true", help="skip the rollups' fold after each import")
    parser.add_argument("--once", action="store_true", help="skip importing the same file again")
    parser.add_argument("--interleaved", action="store_true",
                        help="addresses in turn (row i is address i mod rows/10), as in a time-ordered export:"
                             " every row of a chunk names another address; by default each address's ten rows"
                             " are next to each other")
    parser.add_argument("--admin-url", default=os.environ.get(
        "ESEQ_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()

    with fresh_database(f"eseq_bench_{RUN}", args.admin_url) as url, tempfile.TemporaryDirectory() as tmp:
        os.environ["DATABASE_URL"] = url
        db.configure(url)
        from models import Event
        from settings import get_settings
        from web.app import create_app

        get_settings.cache_clear() if hasattr(get_settings, "cache_clear") else None
        client = create_app().test_client()
        made = client.post("/api/v1/accounts", json={"name": "Bench", "from_email": "b@example.com", "from_name": "B"},
                           headers={"Authorization": "Bearer bench-admin-token-0123456789abcdef"}).get_json()
        headers = {"X-API-Key": made["api_key"]}
        offset = 0
        for rows in args.rows:
            path = Path(tmp) / f"history-{rows}.csv"
            size = write_history(path, rows, offset, args.interleaved)
            offset += 7 * rows  # each size its own events
            print(f"history: {rows:,} rows, {size / 1e6:.0f} MB" + (", addresses in turn" if args.interleaved else ""))
            for label in ("import", "same file again (all duplicates)")[:1 if args.once else 2]:
                upload, total, counts, web, worker, (python, postgres) = run_once(client, headers, path)
                print(f"  {label}: upload {upload:.1f} s, upload to completed {total:.1f} s, "
                      f"{rows / total:,.0f} rows/s, {counts}; peak RSS upload {web.peak_mib:,.0f} MiB"
                      f" (+{web.peak_mib - web.start_mib:,.0f}), job {worker.peak_mib:,.0f} MiB"
                      f" (+{worker.peak_mib - worker.start_mib:,.0f}); job CPU per row: Python"
                      f" {python / rows * 1e6:.1f} µs, PostgreSQL {postgres / rows * 1e6:.1f} µs", flush=True)
            if not args.no_fold:
                elapsed, folded = fold_all(made["id"])
                print(f"  rollups fold past the imported events: {folded:,} events in {elapsed:.1f} s")
        with db.session_scope() as s:
            stored = s.scalar(select(func.count()).select_from(Event))
        assert stored == sum(args.rows), f"expected {sum(args.rows)} events, found {stored}"
        db.get_engine().dispose()


if __name__ == "__main__":
    main()
