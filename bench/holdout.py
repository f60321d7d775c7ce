"""Benchmark of holdouts on PostgreSQL (issue 18, item 5).

Seeds as bench.rollups does (``--enrollments`` enrollments 30 days old, two email
steps, ``--events`` events of which one in twenty is a "purchase"), holds out one
enrollment in ten, and prints:
1. the live count the endpoint made on every request before the cache
   (analytics.holdout.group_counts; p50/p99 of 5), which the analytics pool now
   runs on a recount; the first request (counts and stores, once); then the
   endpoint served from the cache (through the Flask app, in process): p50/p99 of
   200 requests, and that its groups equal the live count's;
2. enrolling 10,000 subscribers through sequencing.enroll at 0% and at 10%
   holdout (the draw is a hash per subscriber): the time of each, best of 3;
3. advancing 10,000 due enrollments (email, delay) at 0% and 50% held out.

Run: ``.venv/bin/python -m bench.holdout [--enrollments 1000000] [--events 2000000] [--endpoint-only]``.
"""
from __future__ import annotations

import argparse
import statistics
import time

from sqlalchemy import text

from bench import bench_account, timed
from bench.rollups import DB, ENV, endpoint, seed
from models import db
from tests.support.database import fresh_database

STEPS = [{"type": "email", "subject": "a", "text": "a"}, {"type": "delay", "seconds": 86400},
         {"type": "email", "subject": "b", "text": "b"}]


def _live_counts(sequence_id: int) -> tuple[list[float], dict[str, list[int]]]:
    from analytics.holdout import group_counts
    from models import Sequence

    counts: dict[bool, tuple[int, int]] = {}
    with db.session_scope() as s:
        sequence = s.get(Sequence, sequence_id)

        def count() -> None:
            nonlocal counts
            counts = group_counts(s, sequence)

        times = sorted(timed(count, 1)[0] for _ in range(5))
    return times, {"treated": list(counts[False]), "held_out": list(counts[True])}


def _enroll_seconds(account: int, percent: float, prefix: str) -> float:
    from models.base import utcnow
    from sequencing.enroll import enroll_subscribers
    from tests.support import factories

    times = []
    for attempt in range(3):
        sequence = factories.sequence(account, STEPS, settings={"holdout_percent": percent})
        people = factories.subscribers(account, 10_000, prefix=f"{prefix}{attempt}-")
        with db.session_scope() as s:
            started = time.perf_counter()
            enrolled, _ = enroll_subscribers(s, account, sequence, people, now=utcnow())
            times.append(time.perf_counter() - started)
        assert enrolled == 10_000
    return min(times)


def _advance_seconds(account: int, percent: float, prefix: str) -> tuple[float, int]:
    from models.base import utcnow
    from sequencing.claims import claim_due_enrollments
    from sequencing.engine import advance_enrollments
    from sequencing.enroll import enroll_subscribers
    from tests.support import factories

    sequence = factories.sequence(account, STEPS, settings={"holdout_percent": percent})
    people = factories.subscribers(account, 10_000, prefix=prefix)
    now = utcnow()
    with db.get_engine().begin() as c:  # only this sequence's enrollments are due
        c.execute(text("UPDATE enrollments SET next_run_at = NULL WHERE sequence_id <> :s"), {"s": sequence})
    with db.session_scope() as s:
        enroll_subscribers(s, account, sequence, people, now=now)
    with db.session_scope() as s:
        ids = claim_due_enrollments(s, now, 10_000)
    started = time.perf_counter()
    queued = 0
    for chunk in range(0, len(ids), 200):  # the tick's batches of 200
        with db.session_scope() as s:
            queued += len(advance_enrollments(s, ids[chunk:chunk + 200], now).message_ids)
    return time.perf_counter() - started, queued


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--enrollments", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--endpoint-only", action="store_true", help="skip the enroll and advance figures")
    args = parser.parse_args()
    with fresh_database(DB):
        from tests.support import factories
        from web.app import create_app

        client = create_app().test_client()
        created = bench_account(client, ENV)
        account, key = created["id"], created["api_key"]
        sequence = factories.sequence(account, STEPS, settings={"holdout_percent": 10,
                                                                "goal": {"event": "purchase", "within_days": 7}})
        seed(account, sequence, args.enrollments, args.events)
        with db.get_engine().begin() as c:
            c.execute(text("UPDATE enrollments SET held_out = (subscriber_id % 10 = 3) WHERE sequence_id = :s"),
                      {"s": sequence})
            c.execute(text("ANALYZE enrollments"))
        print(f"seeded {args.enrollments:,} enrollments (a tenth held out) and {args.events:,} events", flush=True)
        live, live_counts = _live_counts(sequence)
        print(f"live count (group_counts, each request's before the cache; now the pool's recount): "
              f"p50 {statistics.median(live):.0f} ms, p99 {max(live):.0f} ms (5 runs)", flush=True)
        path = f"/api/v1/email-sequences/{sequence}/holdout"
        started = time.perf_counter()
        first = client.get(path, headers={"X-API-Key": key})
        print(f"first request (counts and stores): {(time.perf_counter() - started) * 1000:.0f} ms", flush=True)
        assert first.status_code == 200
        p50, p99 = endpoint(client, key, sequence, "holdout", requests=200)
        body = client.get(path, headers={"X-API-Key": key}).get_json()
        groups = {g["group"]: [g["converted"], g["enrollments"]] for g in body["groups"]}
        assert groups == live_counts, (groups, live_counts)
        print(f"holdout endpoint from the cache: p50 {p50:.1f} ms, p99 {p99:.1f} ms (200 requests); groups "
              f"{[(g['group'], g['enrollments'], g['converted']) for g in body['groups']]} (= the live count), "
              f"lift {body['absolute_lift']:.4f} {body['absolute_lift_interval']}, as_of {body['as_of']}", flush=True)
        if args.endpoint_only:
            return
        for percent in (0, 10):
            print(f"enroll 10,000 at {percent}% holdout: {_enroll_seconds(account, percent, f'e{percent}-'):.3f} s"
                  " (best of 3)", flush=True)
        for percent in (0, 50):
            seconds, queued = _advance_seconds(account, percent, f"a{percent}-")
            print(f"advance 10,000 due at {percent}% holdout: {seconds:.2f} s, {queued:,} messages queued",
                  flush=True)


if __name__ == "__main__":
    main()
