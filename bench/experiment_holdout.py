"""Benchmark of an experiment's holdout arm on PostgreSQL.

An email step with variants A/B and a ``converted`` experiment, then a delay:
1. advancing 10,000 due enrollments in the tick's batches of 200 at 0% and at 30%
   holdout_percent (a held visit writes an experiment_holdouts row, not a message);
2. the arm's counts (analytics.experiment_results.holdout_counts) for ``--held``
   held visits and ``--events`` purchase events of their subscribers spread over
   30 days around the visit: p50/p99 of 20 calls. The experiments endpoint made
   this count on every request before the cache; now the analytics pool does;
3. the experiments endpoint (Flask app in process, the events folded first):
   the first request (counts the arm and stores it, once), then p50/p99 of 200
   requests served from the cache, and that the arm's counts equal (2)'s.

Run: ``.venv/bin/python -m bench.experiment_holdout [--held 100000] [--events 1000000] [--arm-only]``.
"""
from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

from sqlalchemy import select, text

from bench import bench_account, timed
from bench.rollups import DB, ENV  # (sets the environment first)
from models import db
from tests.support.database import fresh_database

AB = [{"name": "A", "subject": "a"}, {"name": "B", "subject": "b"}]


def _steps(percent: float) -> list[dict]:
    return [{"type": "email", "subject": "a", "text": "a", "variants": AB,
             "experiment": {"metric": "converted", "holdout_percent": percent}},
            {"type": "delay", "seconds": 86400}]


def _advance_seconds(account: int, percent: float, prefix: str) -> tuple[float, int, int]:
    from models.base import utcnow
    from sequencing.claims import claim_due_enrollments
    from sequencing.engine import advance_enrollments
    from tests.support import factories

    sequence = factories.sequence(account, _steps(percent))
    people = factories.subscribers(account, 10_000, prefix=prefix)
    now = utcnow()
    with db.get_engine().begin() as c:
        c.execute(text("UPDATE enrollments SET next_run_at = NULL WHERE sequence_id <> :s"), {"s": sequence})
    factories.enroll(account, sequence, people, now - timedelta(seconds=1))
    with db.session_scope() as s:
        ids = claim_due_enrollments(s, now, 10_000)
    started = time.perf_counter()
    queued = 0
    for chunk in range(0, len(ids), 200):
        with db.session_scope() as s:
            queued += len(advance_enrollments(s, ids[chunk:chunk + 200], now).message_ids)
    seconds = time.perf_counter() - started
    with db.get_engine().begin() as c:
        held = c.execute(text("SELECT count(*) FROM experiment_holdouts WHERE sequence_id = :s"),
                         {"s": sequence}).scalar()
    return seconds, queued, int(held)


def _seed_arm(account: int, held: int, events: int) -> int:
    """A sequence whose step has ``held`` held visits a day ago; ``events`` purchases
    on the held subscribers, spread over 30 days around the visit."""
    from tests.support import factories

    sequence = factories.sequence(account, _steps(30), settings={"goal": {"event": "purchase", "within_days": 1}})
    with db.get_engine().begin() as c:
        step = c.execute(text("SELECT id FROM steps WHERE sequence_id = :s"), {"s": sequence}).scalar()
        c.execute(text(
            "INSERT INTO subscribers (account_id, email, status, attributes, tags, created_at, updated_at)"
            " SELECT :a, 'arm' || g || '@bench.test', 'active', '{}', '[]', now(), now()"
            " FROM generate_series(1, :n) g"), {"a": account, "n": held})
        c.execute(text(
            "INSERT INTO experiment_holdouts (account_id, sequence_id, step_id, enrollment_id, subscriber_id, visit,"
            " held_at) SELECT :a, :s, :step, NULL, id, 0, now() - interval '1 day' FROM subscribers"
            " WHERE account_id = :a AND email LIKE 'arm%'"), {"a": account, "s": sequence, "step": step})
        # Purchases land on held subscribers at times spread over 30 days around
        # the visit: about one in thirty of each one's falls in its day's window.
        c.execute(text(
            "INSERT INTO events (account_id, subscriber_id, name, dedup_key, occurred_at, properties, source,"
            " created_at) SELECT :a, s.id, 'purchase', 'p' || g,"
            " now() - interval '15 days' + (g % 720) * interval '1 hour', '{}', 'api', now()"
            " FROM generate_series(1, :n) g JOIN subscribers s ON s.account_id = :a"
            " AND s.email = 'arm' || (1 + (g / 7) % :held) || '@bench.test'"),
            {"a": account, "n": events, "held": held})
        c.execute(text("ANALYZE"))
    return sequence


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--held", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--arm-only", action="store_true", help="skip the advance figures")
    args = parser.parse_args()
    with fresh_database(DB):
        from analytics.experiment_results import holdout_counts
        from models import Sequence, Step
        from tests.support import factories
        from web.app import create_app

        client = create_app().test_client()
        created = bench_account(client, ENV)
        account, key = created["id"], created["api_key"]
        for percent in (0, 30) if not args.arm_only else ():
            seconds, queued, held = _advance_seconds(account, percent, f"a{percent}-")
            print(f"advance 10,000 due at {percent}% experiment holdout: {seconds:.2f} s, "
                  f"{queued:,} messages queued, {held:,} visits held", flush=True)
        sequence_id = _seed_arm(account, args.held, args.events)
        times, answer = [], {}
        with db.session_scope() as s:
            sequence = s.get(Sequence, sequence_id)
            steps = [(step, step.config["experiment"]) for step in s.scalars(select(Step).where(
                Step.sequence_id == sequence_id, Step.type == "email"))]
            for _ in range(20):
                started = time.perf_counter()
                answer = holdout_counts(s, sequence, steps)
                times.append((time.perf_counter() - started) * 1000)
        times.sort()
        print(f"holdout_counts over {args.held:,} held visits and {args.events:,} purchases: "
              f"p50 {statistics.median(times):.0f} ms, p99 {times[-1]:.0f} ms; {list(answer.values())}", flush=True)
        _endpoint(client, key, account, sequence_id, list(answer.values())[0])


def _endpoint(client: object, key: str, account: int, sequence_id: int, arm: dict) -> None:
    from analytics.rollups import fold_chunk
    from models.base import utcnow

    while True:  # the pool's fold of the seeded events, so that a request has none to fold itself
        with db.session_scope() as s:
            fold = fold_chunk(s, account, utcnow(), limit=50_000, wait=False)
        if fold is None or fold.caught_up:
            break
    path = f"/api/v1/email-sequences/{sequence_id}/experiments"

    def get() -> dict:
        response = client.get(path, headers={"X-API-Key": key})  # type: ignore[attr-defined]
        assert response.status_code == 200, response.get_json()
        return response.get_json()[0]["variants"][-1]

    started = time.perf_counter()
    get()
    print(f"experiments endpoint, first request (counts the arm and stores it): "
          f"{(time.perf_counter() - started) * 1000:.0f} ms", flush=True)
    p50, p99 = timed(get, 200)
    served = get()
    assert (served["held"], served["successes"]) == (arm["held"], arm["converted"]), (served, arm)
    print(f"experiments endpoint from the cache: p50 {p50:.1f} ms, p99 {p99:.1f} ms (200 requests); "
          f"arm held {served['held']:,}, converted {served['successes']:,} (= holdout_counts)", flush=True)


if __name__ == "__main__":
    main()
