"""Benchmark of the attribution query on PostgreSQL (issue: analytics pool, item 3).

Seeds as bench.rollups does (one sequence, two email steps, a message per
enrollment and email step, one event in twenty a "purchase" with a value), then
prints, for each model: the time of analytics.attribution.attribute over the whole
account (the one SQL join and the split in Python), the conversions and the rows,
and whether the attributed revenue adds up to the covered conversions' to the cent;
then the endpoint: its first request (which computes and stores the answer) and 200
more served from the analytics pool's cache, p50/p99.

Run: ``.venv/bin/python -m bench.attribution [--events 1000000] [--enrollments 100000]``.
"""
from __future__ import annotations

import argparse
import time

from bench import bench_account, timed
from bench.rollups import DB, ENV, seed
from models import db
from tests.support.database import fresh_database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--enrollments", type=int, default=100_000)
    args = parser.parse_args()
    with fresh_database(DB):
        from analytics.attribution import attribute
        from tests.support import factories
        from web.app import create_app

        client = create_app().test_client()
        created = bench_account(client, ENV)
        steps = [{"type": "email", "subject": "a", "text": "a"}, {"type": "delay", "seconds": 86400},
                 {"type": "email", "subject": "b", "text": "b"}]
        sequence = factories.sequence(created["id"], steps, settings={"goal": {"event": "purchase", "within_days": 7}})
        seed(created["id"], sequence, args.enrollments, args.events)
        print(f"seeded {2 * args.enrollments:,} messages and {args.events:,} events", flush=True)
        for model in ("last_touch", "first_touch", "linear"):
            with db.session_scope() as s:
                started = time.perf_counter()
                answer = attribute(s, created["id"], model, 30)
                seconds = time.perf_counter() - started
            totals = answer["totals"]
            exact = sum(row["revenue"] for row in answer["rows"]) == totals["attributed_revenue"]
            print(f"{model}: {seconds:.2f} s for {totals['conversions']:,} conversions"
                  f" ({totals['unattributed_conversions']:,} unattributed), {len(answer['rows'])} rows,"
                  f" revenue {totals['attributed_revenue']} attributed, adds up exactly: {exact}", flush=True)
        # The endpoint: the first request of a query computes and stores the answer
        # (analytics.attribution_cache), later ones are served from it.
        headers = {"X-API-Key": created["api_key"]}
        url = "/api/v1/analytics/attribution?model=linear&window_days=30"
        started = time.perf_counter()
        first = client.get(url, headers=headers)
        print(f"GET attribution, first request (computes and stores): {time.perf_counter() - started:.2f} s,"
              f" {first.status_code}", flush=True)

        def get() -> None:
            answer = client.get(url, headers=headers)
            assert answer.status_code == 200 and answer.get_json()["rows"] == first.get_json()["rows"]

        p50, p99 = timed(get, 200)
        print(f"GET attribution (cached): p50 {p50:.1f} ms, p99 {p99:.1f} ms (200 requests,"
              " in-process Flask client)", flush=True)


if __name__ == "__main__":
    main()
