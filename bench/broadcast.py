"""Benchmark of broadcasts (issue: audiences and broadcasts, the broadcast figure).

1. **Queueing.** On a database of its own: N active subscribers (generate_series
   SQL, a mix of time zones) subscribed to a topic, and a broadcast to it. Timed:
   from ``schedule`` (the API's domain call, pre-flight overridden) to the commit
   of the start step that fixes the audience and writes every message (the step
   beat's ``broadcasts.run_due`` runs, here called in process: the beat's own
   latency, at most one tick, is not in it). Also with ``local_time`` (a CASE of
   per-zone moments) and with a 10% subject test.
2. **Sending.** A broadcast to S subscribers through the real processes (beat with
   a 1 s tick, the default worker, the send worker, as bench/send_pipeline.py runs
   them) into a loopback SMTP sink (bench.send_pipeline's asyncio server, no
   delay): from ``schedule`` to the last message recorded ``sent``; then the
   sequences' path (bench.send_pipeline.run_platform) with as many emails into the
   same sink, in the same run, for comparison.

Run: ``.venv/bin/python -m bench.broadcast [--subscribers 1000000] [--sample 20000]``
(PostgreSQL and Redis on 127.0.0.1; every database it makes is dropped after).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench.send_pipeline import HTML, RUN, cpu_by_kind, run_platform, smtp_server  # noqa: I001 (sets the environment)

from sqlalchemy import text

from broadcasts import lifecycle
from broadcasts.sending import claim_due, run_step
from content.preflight import Spamd
from models import db
from models.base import utcnow
from tests.support import factories
from tests.support.database import fresh_database, url_for
from tests.support.processes import Proc, beat_argv, platform_env, worker_argv
from tests.support.waiting import wait_for

ZONES = ("America/New_York", "Europe/Paris", "Asia/Tokyo", "Australia/Sydney", "America/Los_Angeles", "")
NO_SPAMD = Spamd("127.0.0.1", 1)


def seed(count: int) -> int:
    """An account with ``count`` active subscribers in its ``news`` topic."""
    account = factories.account("Bench")
    zones = "ARRAY[" + ", ".join(f"'{z}'" for z in ZONES) + "]"
    with db.get_engine().begin() as conn:
        conn.execute(text(f"""
            INSERT INTO subscribers (account_id, email, first_name, status, timezone, attributes, tags, created_at,
                                     updated_at)
            SELECT :a, 'reader' || g || '@example.test', 'Reader' || g, 'active',
                   NULLIF(({zones})[1 + g % {len(ZONES)}], ''), '{{}}', '[]', now(), now()
            FROM generate_series(1, :n) g"""), {"a": account, "n": count})
        topic = conn.execute(text("INSERT INTO topics (account_id, key, name, created_at) "
                                  "VALUES (:a, 'news', 'News', now()) RETURNING id"), {"a": account}).scalar()
        conn.execute(text("""
            INSERT INTO topic_subscriptions (account_id, topic_id, subscriber_id, status, created_at, updated_at)
            SELECT :a, :t, id, 'subscribed', now(), now() FROM subscribers WHERE account_id = :a"""),
                     {"a": account, "t": topic})
    with db.get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return account


def schedule(account: int, **fields: object) -> int:
    body = {"name": "Bench news", "topic": "news", "subject": "News, {{ subscriber.first_name }}", "html": HTML,
            **fields}
    with db.session_scope() as s:
        row = lifecycle.create(s, account, body, utcnow())
        lifecycle.schedule(s, account, row.id, utcnow(), None, NO_SPAMD, override_preflight=True)
        return row.id


def queue_in_process(account: int, **fields: object) -> tuple[float, int]:
    """Seconds from schedule to the start step's commit, and the messages written."""
    started = time.perf_counter()
    broadcast_id = schedule(account, **fields)
    with db.session_scope() as s:
        claimed = claim_due(s, utcnow())
    assert claimed is not None and claimed.id == broadcast_id
    with db.session_scope() as s:
        run_step(s, claimed, utcnow())
    elapsed = time.perf_counter() - started
    with db.get_engine().connect() as conn:
        written = conn.execute(text("SELECT count(*) FROM messages WHERE broadcast_id = :b"),
                               {"b": broadcast_id}).scalar()
        # Nothing sends here (no workers run); the next run queues beside these rows, as
        # a broadcast does into an outbox that holds earlier ones, and this one's later
        # steps are not the next run's to take.
        conn.execute(text("UPDATE broadcasts SET status = 'sent', next_run_at = NULL WHERE id = :b"),
                     {"b": broadcast_id})
        conn.commit()
    return elapsed, int(written or 0)


def queueing(count: int) -> list[tuple[str, str]]:
    rows = []
    name = f"eseq_bench_broadcast_{RUN}_queue"
    with fresh_database(name):
        db.configure(url_for(name))
        started = time.perf_counter()
        account = seed(count)
        rows.append((f"seed {count:,} subscribers in a topic (generate_series)", f"{time.perf_counter() - started:.1f} s"))
        for label, fields in (("at once", {}), ("local_time 09:00, 6 zones", {"local_time": "09:00"}),
                              ("10% subject test of 2 variants", {
                                  "variants": [{"name": "A"}, {"name": "B", "subject": "Other"}],
                                  "test": {"percent": 10, "wait_seconds": 3600}})):
            elapsed, written = queue_in_process(account, **fields)
            rows.append((f"schedule -> all queued, {label}",
                         f"{elapsed:.1f} s for {written:,} messages ({written / elapsed:,.0f} rows/s)"))
            print(f"{rows[-1][0]}: {rows[-1][1]}", flush=True)
        db.get_engine().dispose()
    return rows


def sending(count: int, port: int, concurrency: int, tmp: Path) -> dict[str, float]:
    """A broadcast to ``count`` subscribers through beat and workers into the sink."""
    name = f"eseq_bench_broadcast_{RUN}_send"
    with fresh_database(name):
        db.configure(url_for(name))
        account = seed(count)
        env = platform_env(DATABASE_URL=url_for(name), ESEQ_BROKER_PREFIX=f"eseq-bench-{RUN}-bc:",
                           SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), FROM_EMAIL="news@bench.test")
        procs = [Proc("bc-default", worker_argv("default", queues="default", pool="prefork", concurrency=2,
                                                loglevel="INFO"), env, tmp),
                 Proc("bc-send", worker_argv("send", queues="send", pool="threads", concurrency=concurrency,
                                             loglevel="INFO", prefetch=4), env, tmp),
                 Proc("bc-beat", beat_argv(tmp / "bc-schedule"), env, tmp)]
        try:
            for proc in procs[:-1]:
                proc.wait_ready()
            cpu_before = cpu_by_kind()
            started = utcnow()
            broadcast_id = schedule(account)

            def all_sent() -> bool:
                with db.get_engine().connect() as conn:
                    return conn.execute(text("SELECT count(*) FROM messages WHERE status = 'sent'")).scalar() == count

            wait_for(all_sent, 1800, f"all {count} broadcast emails sent", interval=1.0)
            cpu = {kind: spent - cpu_before.get(kind, 0.0) for kind, spent in cpu_by_kind().items()}
            with db.get_engine().connect() as conn:
                queued, last = conn.execute(text("SELECT max(created_at), max(sent_at) FROM messages "
                                                 "WHERE broadcast_id = :b"), {"b": broadcast_id}).one()
        finally:
            for proc in procs:
                proc.stop()
            db.get_engine().dispose()
    elapsed = (last - started).total_seconds()
    return {"elapsed": elapsed, "rate": count / elapsed, "queued": (queued - started).total_seconds(),
            **{f"cpu:{kind}": spent / count * 1e6 for kind, spent in sorted(cpu.items(), key=lambda kv: -kv[1])}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000, help="audience of the queueing runs")
    parser.add_argument("--sample", type=int, default=20_000, help="emails of the sending runs")
    parser.add_argument("--send-concurrency", type=int, default=int(os.environ.get("SEND_CONCURRENCY", "50")))
    parser.add_argument("--only", choices=("queue", "send"), action="append")
    args = parser.parse_args()
    parts = set(args.only or ("queue", "send"))
    tmp = Path(f"/tmp/eseq-bench-broadcast-{RUN}")
    tmp.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str]] = [("load average before", " ".join(f"{x:.2f}" for x in os.getloadavg()))]
    if "queue" in parts:
        rows += queueing(args.subscribers)
    if "send" in parts:
        with smtp_server("slow", tmp, 0) as port:
            result = sending(args.sample, port, args.send_concurrency, tmp)
            rows.append((f"broadcast, schedule -> all sent, {args.sample:,} emails into the sink, send pool "
                         f"{args.send_concurrency} threads",
                         f"{result['rate']:,.0f} emails/s ({result['elapsed']:.1f} s; queued after "
                         f"{result['queued']:.1f} s)"))
            print(f"{rows[-1][0]}: {rows[-1][1]}", flush=True)
            for key, micros in result.items():
                if key.startswith("cpu:"):
                    rows.append((f"  CPU per email in that run, {key[4:]}", f"{micros:,.0f} µs"))
            result = run_platform("bcseq", port, args.sample, args.send_concurrency, tmp, timeout=1800)
            rows.append((f"sequence (bench/send_pipeline's path), due -> all sent, {args.sample:,} emails into the "
                         "same sink", f"{result['rate']:,.0f} emails/s ({result['elapsed']:.1f} s)"))
            print(f"{rows[-1][0]}: {rows[-1][1]}", flush=True)
    rows.append(("load average after", " ".join(f"{x:.2f}" for x in os.getloadavg())))
    print("\n| what | figure |\n|---|---|")
    for what, figure in rows:
        print(f"| {what} | {figure} |")


if __name__ == "__main__":
    main()
