"""Benchmark of the timer on PostgreSQL + Redis (issue: sequencing engine).

Measures, on a database of its own:
1. enrolling 100,000 subscribers through the real web process (10 requests of 10,000 emails);
2. with 1,000,000 active enrollments of which 10,000 are due: one tick's claim and
   dispatch (the same code as ``sequencing.tick``), plus the claim query's plan;
3. advance throughput through real Celery worker processes (prefork, one per core):
   due enrollment -> outbox message written, enrollments/s and messages/s.

Run: ``.venv/bin/python -m bench.engine`` (PostgreSQL and Redis on 127.0.0.1).
``--advance-only`` runs part 3 alone, on a one-email-step sequence seeded in SQL
(the advance's own cost, without the delay step the API part's sequence has);
``--total N`` seeds N enrollments instead of a million.
"""
from __future__ import annotations

import argparse
import json
import time
import urllib.request
from pathlib import Path

from bench import environment

RUN, DB, ENV = environment()

import psutil  # noqa: E402
from sqlalchemy import text  # noqa: E402

from models import db  # noqa: E402
from models.base import utcnow  # noqa: E402
from tests.support import factories  # noqa: E402
from tests.support.database import fresh_database, url_for  # noqa: E402

DB_URL = url_for(DB)
from tests.support.processes import Proc, platform_env, wait_healthy, web_argv, worker_argv  # noqa: E402
from tests.support.smtp import free_port  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402


def post(port: int, path: str, body: object, headers: dict[str, str]) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def bench_enroll_api(tmp: Path) -> tuple[int, int]:
    port = free_port()
    web = Proc("web", web_argv(port), platform_env(), tmp)
    try:
        wait_healthy(port)
        account = post(port, "/api/v1/accounts", {"name": "Bench", "from_email": "b@bench.test"},
                       {"Authorization": "Bearer bench-admin-token-0123456789abcdef"})
        auth = {"X-API-Key": account["api_key"]}
        steps = [{"type": "email", "subject": "Hello", "text": "x"}, {"type": "delay", "days": 1},
                 {"type": "email", "subject": "Again", "text": "x"}]
        sequence = post(port, "/api/v1/email-sequences", {"name": "Bench", "steps": steps}, auth)
        post(port, f"/api/v1/email-sequences/{sequence['id']}/activate", {}, auth)
        started = time.perf_counter()
        enrolled = 0
        for batch in range(10):
            emails = [f"api{batch}-{i}@bench.test" for i in range(10_000)]
            enrolled += post(port, f"/api/v1/email-sequences/{sequence['id']}/subscribers", {"emails": emails}, auth)["enrolled"]
        elapsed = time.perf_counter() - started
        print(f"enroll via API: {enrolled} subscribers in {elapsed:.1f} s ({enrolled / elapsed:,.0f}/s)")
        return account["id"], sequence["id"]
    finally:
        web.stop()


def cpu_seconds(processes: list[psutil.Process]) -> dict[int, float]:
    """User + system CPU by pid of the processes still alive."""
    spent = {}
    for proc in processes:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        spent[proc.pid] = times.user + times.system
    return spent


def worker_processes(worker: Proc) -> list[psutil.Process]:
    root = psutil.Process(worker.popen.pid)
    return [root, *root.children(recursive=True)]


def database_backends() -> list[psutil.Process]:
    """PostgreSQL backends serving this run's database (their title names it)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(DB in part for part in (proc.info["cmdline"] or [])):
            found.append(proc)
    return found


def spent_since(before: dict[int, float], processes: list[psutil.Process]) -> float:
    return sum(now - before.get(pid, 0.0) for pid, now in cpu_seconds(processes).items())


def seed_million(account_id: int, sequence_id: int, due: int, total: int) -> None:
    """Bulk rows straight in SQL: the seed is not what is measured."""
    with db.get_engine().begin() as conn:
        conn.execute(text("DELETE FROM enrollments"))
        conn.execute(text("""
            INSERT INTO subscribers (account_id, email, status, attributes, tags, created_at, updated_at)
            SELECT :a, 'seed' || g || '@bench.test', 'active', '{}', '[]', now(), now()
            FROM generate_series(1, :n) g"""), {"a": account_id, "n": total})
        conn.execute(text("""
            INSERT INTO enrollments (account_id, sequence_id, subscriber_id, instance_key, run, status, current_step,
                                     next_run_at, state, enrolled_at, updated_at)
            SELECT :a, :s, id, '', 1, 'active', 0,
                   CASE WHEN row_number() OVER (ORDER BY id) <= :due THEN now() - interval '1 minute'
                        ELSE now() + interval '1 day' * (1 + random() * 30) END,
                   '{}', now(), now()
            FROM subscribers WHERE account_id = :a AND email LIKE 'seed%'"""),
                     {"a": account_id, "s": sequence_id, "due": due})
    with db.get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE enrollments"))


def bench_tick(due: int, total: int, tmp: Path) -> None:
    from sequencing.claims import _CLAIM
    from tasks.batching import ADVANCE_BATCH, fan_out
    from tasks.sequencing import advance

    with db.get_engine().connect() as conn:  # fillfactor 70 (migration 0039) trades room for heap-only claims
        rows_bytes, table_bytes = conn.execute(text(
            "SELECT pg_relation_size('enrollments'), pg_total_relation_size('enrollments')")).one()
    print(f"enrollments: {rows_bytes / 2**20:,.0f} MiB of rows, {table_bytes / 2**20:,.0f} MiB with their indexes")
    with db.get_engine().begin() as conn:
        plan = conn.execute(text("EXPLAIN ANALYZE " + str(_CLAIM["postgresql"])),
                            {"now": utcnow(), "lease_until": utcnow(), "limit": due}).scalars().all()
        conn.rollback()
    print("claim plan:\n  " + "\n  ".join(plan))
    from sequencing.claims import claim_due_enrollments

    worker = Proc("worker", worker_argv("bench", queues="default", pool="prefork", concurrency=2, loglevel="INFO"),
                  platform_env(), tmp)
    worker.wait_ready()
    workers = worker_processes(worker)
    worker_before = cpu_seconds(workers)
    postgres_before = cpu_seconds(database_backends())
    started = time.perf_counter()
    with db.session_scope() as session:
        ids = claim_due_enrollments(session, utcnow(), due)
    claimed = time.perf_counter()
    fan_out(advance, ids, ADVANCE_BATCH)
    done = time.perf_counter()
    print(f"tick: claimed {len(ids)} of {total:,} in {claimed - started:.3f} s, dispatched "
          f"{len(ids) // ADVANCE_BATCH} advance tasks in {done - claimed:.3f} s (total {done - started:.3f} s)")
    try:
        def advanced() -> bool:
            with db.get_engine().connect() as conn:
                return conn.execute(text("SELECT count(*) FROM enrollments WHERE id = ANY(:ids) AND current_step = 0"),
                                    {"ids": ids}).scalar() == 0

        wait_for(advanced, 300, "the advance to finish", interval=0.05)
        elapsed = time.perf_counter() - started
        with db.get_engine().connect() as conn:
            messages = conn.execute(text("SELECT count(*) FROM messages")).scalar()
        worker_cpu = spent_since(worker_before, workers)
        postgres_cpu = spent_since(postgres_before, database_backends())
        print(f"advance (2 prefork processes, from the tick's start): {len(ids)} enrollments in {elapsed:.2f} s "
              f"= {len(ids) / elapsed:,.0f} enrollments/s; {messages} outbox messages written "
              f"= {messages / elapsed:,.0f} messages/s due->outbox")
        print(f"CPU per email: worker {worker_cpu / max(messages, 1) * 1e6:,.0f} us, "
              f"PostgreSQL (this database's backends) {postgres_cpu / max(messages, 1) * 1e6:,.0f} us")
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--advance-only", action="store_true", help="run part 3 alone, on a one-email-step sequence")
    parser.add_argument("--total", type=int, default=1_000_000, help="enrollments to seed (10,000 of them due)")
    args = parser.parse_args()
    tmp = Path(f"/tmp/eseq-bench-{RUN}")
    tmp.mkdir(parents=True, exist_ok=True)
    with fresh_database(DB):
        db.configure(DB_URL)
        if args.advance_only:
            account_id = factories.account("Bench")
            sequence_id = factories.sequence(account_id, [{"type": "email", "subject": "Hello", "text": "x"}])
        else:
            account_id, sequence_id = bench_enroll_api(tmp)
        seed_million(account_id, sequence_id, due=10_000, total=args.total)
        bench_tick(10_000, args.total, tmp)
        db.get_engine().dispose()


if __name__ == "__main__":
    main()
