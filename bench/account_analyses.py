"""Benchmark of the account analyses (cohorts, RFM, LTV) on PostgreSQL (issue 18,
item 6).

On a database of its own, seeded in SQL (generate_series): ``--subscribers``
subscribers signed up over the last 52 weeks, and ``--events`` events after their
signups: nine in ten opens and clicks spread over all subscribers, one in ten a
purchase by 30% of them (skewed: a few buy often), worth 5-105 with each
customer's own typical spend.
Measures and prints:
1. each computation as the analytics pool runs it (analytics.account_analyses.
   compute_analysis, in a child process of its own): seconds, and that process's
   peak RSS (resource.getrusage);
2. the endpoints serving the cache (in-process Flask client): p50/p99 of 200
   requests each.

Run: ``.venv/bin/python -m bench.account_analyses [--subscribers 1000000] [--events 10000000]``.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench import ROOT, bench_account, environment, timed

KEPT = "eseq_bench_account_analyses"
RUN, DB, ENV = environment(os.environ.get("ESEQ_BENCH_DB") or (KEPT if "--keep" in sys.argv else None))

from sqlalchemy import create_engine, text  # noqa: E402

from models import db  # noqa: E402
from models.db import normalize_url  # noqa: E402

KINDS = ("cohorts", "rfm", "ltv")


def seed(account: int, subscribers: int, events: int) -> None:
    with db.get_engine().begin() as c:
        c.execute(text("INSERT INTO subscribers (account_id, email, status, tags, attributes, created_at, updated_at)"
                       " SELECT :a, 'u' || g || '@bench.test', 'active', '[]', '{}',"
                       " now() - (g % 364) * interval '1 day' - interval '1 hour', now()"
                       " FROM generate_series(0, :n - 1) g"), {"a": account, "n": subscribers})
        first = c.execute(text("SELECT min(id) FROM subscribers WHERE account_id = :a"), {"a": account}).scalar_one()
        # Subscriber index i signed up i % 364 days ago; its events fall between then and now.
        c.execute(text(
            "INSERT INTO events (account_id, subscriber_id, name, source, properties, value, occurred_at, created_at)"
            " SELECT :a, :f + i, CASE WHEN g % 10 = 9 THEN 'purchase' WHEN g % 3 = 0 THEN 'clicked' ELSE 'opened' END,"
            " 'bench', '{}', CASE WHEN g % 10 = 9 THEN round((5 + (i % 20) * 4 + random() * 20)::numeric, 2) END,"
            " now() - random() * (i % 364) * interval '1 day', now()"
            " FROM (SELECT g, CASE WHEN g % 10 = 9 THEN floor(power(random(), 2) * :buyers)::bigint"
            "                      ELSE g % :n END AS i FROM generate_series(0, :e - 1) g) picked"),
            {"a": account, "f": first, "n": subscribers, "e": events, "buyers": max(1, subscribers * 3 // 10)})
        c.execute(text("ANALYZE"))


def compute(account: int) -> None:
    """The child process: each computation as the worker runs it, then its peak RSS."""
    from analytics.account_analyses import claim_analysis, compute_analysis, request_analysis
    from models.base import utcnow

    for kind in KINDS:
        with db.session_scope() as s:
            request_analysis(s, account, kind, utcnow())
            claim_analysis(s, account, kind, utcnow())
        started = time.perf_counter()
        with db.session_scope() as s:
            compute_analysis(s, account, kind, utcnow())
        print(f"{kind}: computed and stored in {time.perf_counter() - started:.2f} s", flush=True)
    # Both asked for (as beat's refresh finds them after new purchases): one read for the two.
    with db.session_scope() as s:
        s.execute(text("UPDATE account_analyses SET status = 'queued' WHERE account_id = :a AND kind IN ('rfm', 'ltv')"),
                  {"a": account})
        claim_analysis(s, account, "rfm", utcnow())
    started = time.perf_counter()
    with db.session_scope() as s:
        compute_analysis(s, account, "rfm", utcnow())
    print(f"rfm and ltv together (one read of the purchases): computed and stored in "
          f"{time.perf_counter() - started:.2f} s", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"computing process peak RSS: {peak:.0f} MiB", flush=True)


def endpoint(client: object, key: str, path: str, requests: int = 200) -> tuple[float, float, int]:
    size = 0

    def get() -> None:
        nonlocal size
        response = client.get(f"/api/v1/analytics/{path}", headers={"X-API-Key": key})  # type: ignore[attr-defined]
        assert response.status_code == 200, response.get_json()
        size = len(response.get_data())

    return (*timed(get, requests), size)


@contextmanager
def kept_database(name: str) -> Iterator[str]:
    """``--keep``: database ``name``, created, migrated and seeded by the first run
    and left for later ones (drop it by hand), so the computations can be timed
    again without seeding ten million events."""
    from tests.support.database import ADMIN_URL, _admin_exec, migrate, url_for

    engine = create_engine(normalize_url(ADMIN_URL))
    with engine.connect() as c:
        exists = c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
    engine.dispose()
    if not exists:
        _admin_exec(f'CREATE DATABASE "{name}"', ADMIN_URL)
        migrate(url_for(name))
    yield url_for(name)


def seeded_account() -> dict | None:
    """The kept database's account, if an earlier run seeded it, with a new API key."""
    from accounts.keys import issue_api_key
    from models import Account

    db.configure(ENV["DATABASE_URL"])
    with db.session_scope() as s:
        account = s.query(Account).filter_by(name="Bench").first()
        if account is None or not s.execute(text("SELECT 1 FROM events LIMIT 1")).first():
            return None
        return {"id": account.id, "api_key": issue_api_key(s, account)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--keep", action="store_true", help=f"seed once into {KEPT} and keep it")
    parser.add_argument("--compute", type=int, default=0, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.compute:
        db.configure(ENV["DATABASE_URL"])
        compute(args.compute)
        return
    from tests.support.database import fresh_database

    with (kept_database(DB) if args.keep else fresh_database(DB)) as url:
        from web.app import create_app

        client = create_app().test_client()
        created = seeded_account() if args.keep else None
        if created is None:
            created = bench_account(client, ENV)
            started = time.perf_counter()
            seed(created["id"], args.subscribers, args.events)
            print(f"seeded {args.subscribers:,} subscribers and {args.events:,} events in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
        subprocess.run([sys.executable, "-m", "bench.account_analyses", "--compute", str(created["id"])], cwd=ROOT,
                       env={**os.environ, "ESEQ_BENCH_DB": DB}, check=True)
        for kind in KINDS:
            p50, p99, size = endpoint(client, created["api_key"], kind)
            print(f"GET /analytics/{kind} (cached): p50 {p50:.1f} ms, p99 {p99:.1f} ms, {size:,} bytes "
                  f"(200 requests, in-process Flask client)", flush=True)
        body = client.get("/api/v1/analytics/ltv", headers={"X-API-Key": created["api_key"]}).get_json()
        print(f"ltv model: {body['model']}", flush=True)
        del url


if __name__ == "__main__":
    main()
