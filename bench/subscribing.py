"""Benchmark of topics and double opt-in on PostgreSQL (issue 21, items 3 and 4).

Seeds one account with ``--members`` subscribers in a topic (and as many outside
it), then prints:
1. enrolling 10,000 subscribers (half of them members) into a sequence with and
   without ``settings.topic``: the membership filter's cost, best of 3;
2. ``delivery.sender.prepare`` of 1,000 queued emails from a topic sequence and
   from the same sequence without a topic: the send-time membership check's
   cost (one query per topic and batch), best of 3;
3. the public form through the Flask app in process: p50/p99 of 300 double opt-in
   posts (each a pending subscriber and a queued confirmation, in one commit),
   each from its own client address so the per-IP limit does not interfere.

Run: ``.venv/bin/python -m bench.subscribing [--members 100000]``.
"""
from __future__ import annotations

import argparse
import time

from bench import bench_account, environment, timed

RUN, DB, ENV = environment()

from sqlalchemy import text  # noqa: E402

from models import db  # noqa: E402
from tests.support.database import fresh_database  # noqa: E402

STEPS = [{"type": "email", "subject": "Hi {{ subscriber.first_name }}", "text": "Hello"}]


def _seed(account: int, members: int) -> int:
    """``members`` subscribers in topic "news" and as many outside it; the topic's id."""
    with db.session_scope() as s:
        s.execute(text("INSERT INTO subscribers (account_id, email, first_name, status, attributes, tags, created_at,"
                       " updated_at) SELECT :a, 'reader' || g || '@bench.test', 'R', 'active', '{}', '[]', now(), now()"
                       " FROM generate_series(1, :n) g"), {"a": account, "n": 2 * members})
        topic = s.execute(text("INSERT INTO topics (account_id, key, name, created_at) VALUES (:a, 'news', 'News',"
                               " now()) RETURNING id"), {"a": account}).scalar_one()
        s.execute(text("INSERT INTO topic_subscriptions (account_id, topic_id, subscriber_id, status, created_at,"
                       " updated_at) SELECT :a, :t, id, 'subscribed', now(), now() FROM subscribers"
                       " WHERE account_id = :a AND id % 2 = 0"), {"a": account, "t": topic})
        s.execute(text("ANALYZE subscribers; ANALYZE topic_subscriptions"))
    return int(topic)


def _ids(account: int, count: int, offset: int) -> list[int]:
    with db.session_scope() as s:
        return list(s.execute(text("SELECT id FROM subscribers WHERE account_id = :a ORDER BY id LIMIT :n OFFSET :o"),
                              {"a": account, "n": count, "o": offset}).scalars())


def _enroll_seconds(account: int, settings: dict, offset: int) -> tuple[float, int]:
    from models.base import utcnow
    from sequencing.enroll import enroll_subscribers
    from tests.support import factories

    best, enrolled = float("inf"), 0
    for attempt in range(3):
        sequence = factories.sequence(account, STEPS, settings=settings)
        people = _ids(account, 10_000, offset + attempt * 10_000)
        with db.session_scope() as s:
            started = time.perf_counter()
            enrolled, _ = enroll_subscribers(s, account, sequence, people, now=utcnow())
            best = min(best, time.perf_counter() - started)
    return best, enrolled


def _prepare_seconds(account: int, settings: dict, offset: int) -> float:
    from delivery.sender import SenderIdentity, prepare
    from delivery.tracking import Tracker
    from models.base import utcnow
    from tests.support import factories
    from tests.support.engine import run_due

    best = float("inf")
    for attempt in range(3):
        now = utcnow()
        sequence = factories.sequence(account, STEPS, settings=settings)
        people = [i for i in _ids(account, 2_000, offset + attempt * 2_000) if i % 2 == 0][:1000]
        factories.enroll(account, sequence, people, now)
        message_ids = run_due(now)
        with db.session_scope() as s:
            started = time.perf_counter()
            outgoing = prepare(s, message_ids, now, Tracker(ENV["SECRET_KEY"], "https://bench.test"),
                               SenderIdentity("b@bench.test", "B"))
            best = min(best, time.perf_counter() - started)
            s.rollback()
        assert len(outgoing) == len(people) == 1000, (len(outgoing), len(people))
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    args = parser.parse_args()
    with fresh_database(DB):
        from web.app import create_app

        app = create_app()
        client = app.test_client()
        account = bench_account(client, ENV)
        auth = {"X-API-Key": account["api_key"]}
        _seed(account["id"], args.members)
        print(f"seeded {2 * args.members:,} subscribers, {args.members:,} of them in the topic")

        for label, settings, offset in (("no topic", {}, 0), ("topic", {"topic": "news"}, 40_000)):
            seconds, enrolled = _enroll_seconds(account["id"], settings, offset)
            print(f"enroll 10,000 ({label}): {seconds * 1000:.0f} ms, enrolled {enrolled:,}")
        with db.session_scope() as s:  # those enrollments are not what the send bench measures
            s.execute(text("UPDATE enrollments SET status = 'completed', next_run_at = NULL"))
        for label, settings, offset in (("no topic", {}, 80_000), ("topic", {"topic": "news"}, 90_000)):
            print(f"prepare 1,000 emails ({label}): {_prepare_seconds(account['id'], settings, offset) * 1000:.0f} ms")

        form_key = client.patch("/api/v1/account", json={"opt_in": "double"}, headers=auth).get_json()["form_key"]
        posts = iter(range(1_000_000))

        def post() -> None:
            n = next(posts)
            response = client.post(f"/subscribe/{form_key}", json={"email": f"new{n}@bench.test"},
                                   environ_base={"REMOTE_ADDR": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"})
            assert response.status_code == 202, response.get_data()

        p50, p99 = timed(post, 300)
        print(f"subscribe form, double opt-in (300 posts): p50 {p50:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
