"""Benchmark of event subscriptions and erasure on PostgreSQL (issue: audiences, items 5 and 6).

On a database of its own: ``--subscribers`` subscribers and, after one
subscription to every event type is made, ``--events`` events over them (sent,
delivered, opened, clicked), seeded in SQL; ``--inbound`` providers' raw events
naming the subscribers' addresses in their payloads.
Measures and prints:
1. the feed (webhooks.event_feed.feed, run until caught up, as beat's task runs it):
   events batched per second;
2. the calls: ``--calls`` batches of 100 events POSTed to a receiver on loopback
   by 8 threads (a webhooks worker's pool), claimed and recorded as the task does:
   batches and events per second;
3. beat's probe for news (subscriptions_with_news) with ``--subscriptions``
   subscriptions caught up: p50/p99 of 200 runs;
4. export and erasure of one subscriber: p50/p99 over 20 subscribers each (the
   erasure's searches of providers' payloads and batches scan the account's rows:
   this is their cost at this size).

Run: ``.venv/bin/python -m bench.event_subscriptions [--subscribers 100000] [--events 1000000]``.
"""
from __future__ import annotations

import argparse
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench import bench_account, environment, percentiles, timed

RUN, DB, ENV = environment()
os.environ["ESEQ_WEBHOOK_ALLOW_PRIVATE"] = "true"

from sqlalchemy import text  # noqa: E402

from models import db  # noqa: E402
from models.base import utcnow  # noqa: E402
from tests.support.database import fresh_database  # noqa: E402


class Receiver:
    """An HTTP server on loopback answering 200 to every POST, counting them."""

    def __init__(self) -> None:
        self.calls = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.calls += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def seed(account: int, subscribers: int, events: int, inbound: int) -> None:
    with db.get_engine().begin() as c:
        c.execute(text("INSERT INTO subscribers (account_id, email, status, tags, attributes, created_at, updated_at)"
                       " SELECT :a, 'u' || g || '@bench.test', 'active', '[]', '{}', now(), now()"
                       " FROM generate_series(1, :n) g"), {"a": account, "n": subscribers})
        first = c.execute(text("SELECT min(id) FROM subscribers WHERE account_id = :a"), {"a": account}).scalar_one()
        c.execute(text("INSERT INTO events (account_id, subscriber_id, name, source, properties, occurred_at, created_at)"
                       " SELECT :a, :f + g % :n, (ARRAY['sent','delivered','opened','clicked'])[1 + g % 4],"
                       " 'tracking', '{}', now(), now() FROM generate_series(0, :e - 1) g"),
                  {"a": account, "f": first, "n": subscribers, "e": events})
        c.execute(text("INSERT INTO inbound_events (account_id, provider, provider_event_id, kind, payload, status,"
                       " received_at) SELECT :a, 'sendgrid', 'sg-' || g, 'delivered',"
                       " jsonb_build_object('email', 'u' || (1 + g % :n) || '@bench.test', 'event', 'delivered',"
                       " 'sg_message_id', md5(g::text)), 'processed', now() FROM generate_series(0, :i - 1) g"),
                  {"a": account, "n": subscribers, "i": inbound})
        c.execute(text("ANALYZE"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--inbound", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--subscriptions", type=int, default=20)
    args = parser.parse_args()
    with fresh_database(DB):
        from audience.erasure import erase_subscriber
        from audience.export import export_subscriber
        from core.address_hash import erasure_key
        from webhooks import event_calls, event_feed, outbound
        from webhooks.event_subscriptions import create_subscription
        from webhooks.event_types import EVENT_TYPES
        from web.app import create_app

        account = bench_account(create_app().test_client(), ENV)["id"]
        receiver = Receiver()
        with db.session_scope() as s:
            sid = create_subscription(s, account, {"url": receiver.url, "events": list(EVENT_TYPES)}, True, utcnow())[0].id
        started = time.perf_counter()
        seed(account, args.subscribers, args.events, args.inbound)
        print(f"seeded {args.subscribers:,} subscribers, {args.events:,} events, {args.inbound:,} inbound events"
              f" in {time.perf_counter() - started:.0f} s")

        started, batches = time.perf_counter(), []
        while True:
            with db.session_scope() as s:
                new = event_feed.feed(s, sid, utcnow())
            if not new:
                break
            batches += new
        took = time.perf_counter() - started
        print(f"1. feed: {args.events:,} events into {len(batches):,} batches in {took:.1f} s"
              f" = {args.events / took:,.0f} events/s")

        todo = [batches[i:i + 10] for i in range(0, min(args.calls, len(batches)), 10)]

        def deliver(ids: list[int]) -> None:
            with db.session_scope() as s:
                calls = event_calls.claim(s, ids, utcnow())
            results = [outbound.call(c, ENV["SECRET_KEY"], utcnow(), True) for c in calls]
            with db.session_scope() as s:
                event_calls.record(s, results, utcnow())

        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(deliver, todo))
        took = time.perf_counter() - started
        done = sum(len(t) for t in todo)
        with db.session_scope() as s:
            delivered = s.execute(text("SELECT count(*) FROM event_deliveries WHERE status = 'delivered'")).scalar()
        print(f"2. calls: {done:,} batches ({done * event_feed.BATCH:,} events) in {took:.1f} s = {done / took:,.0f}"
              f" batches/s, {done * event_feed.BATCH / took:,.0f} events/s; delivered {delivered:,},"
              f" receiver saw {receiver.calls:,}")

        with db.session_scope() as s:
            for _ in range(args.subscriptions - 1):
                create_subscription(s, account, {"url": receiver.url, "events": ["message.sent"]}, True, utcnow())

        def probe() -> None:
            with db.session_scope() as s:
                event_feed.subscriptions_with_news(s)

        p50, p99 = timed(probe, 200)
        print(f"3. probe for news, {args.subscriptions} subscriptions caught up: p50 {p50:.2f} ms, p99 {p99:.2f} ms")

        key = erasure_key(ENV["SECRET_KEY"])
        with db.session_scope() as s:
            people = list(s.execute(text("SELECT id FROM subscribers WHERE account_id = :a ORDER BY id LIMIT 20"),
                                    {"a": account}).scalars())
        exports, erasures = [], []
        for person in people:
            started = time.perf_counter()
            with db.session_scope() as s:
                export_subscriber(s, account, person, key)
            exports.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            with db.session_scope() as s:
                erase_subscriber(s, account, person, key, utcnow(), suppress=True)
            erasures.append((time.perf_counter() - started) * 1000)
        print("4. export: p50 {:.0f} ms, p99 {:.0f} ms; erasure: p50 {:.0f} ms, p99 {:.0f} ms".format(
            *percentiles(exports), *percentiles(erasures)))
        receiver.server.shutdown()


if __name__ == "__main__":
    main()
