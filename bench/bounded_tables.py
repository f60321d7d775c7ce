"""Benchmark: the tick and the send path on a large database, and retention's pruning
(issue: scale-out, item 4, bounded tables).

Two databases side by side in one run, seeded the same way in SQL (generate_series,
not the API): a small one and a large one (by default 10,000,000 enrollments and
100,000,000 events). Each has one sequence with an email step; ``--enrollments``
subscribers, enrollments and sent messages (each message with its ``sent`` key in
``event_keys``), 10,000 enrollments due now and 10,000 queued messages whose
dispatch was lost; and ``--events`` events over ``--months`` months up to now, in
their monthly partitions (each month loaded into a bare table, then attached, which
builds its indexes and checks its rows once), 5 % of them of a second account that
keeps its events 60 days where the first keeps them 400. Every event is folded
(the watermarks are at the newest).

Measured on both databases:

- the tick: the claim of 10,000 due enrollments and their dispatch to Redis (as
  ``sequencing.tick``, and bench/engine.py, measure it), p50 of ``--repeat`` runs;
- the send path's database work per message: the sweep's claim of due messages
  (``claim_for_dispatch``), the send claim (``claim_for_send``) and the record of
  the outcomes with their ``sent`` events (``mark_sent``), in batches of 500;
- retention (analytics.retention): the plan; the drop of the oldest month (every
  account past it); batches of the second account's events from the months that
  stay, and of message bodies, for ``--budget`` seconds each, as rows/s.

    python -m bench.bounded_tables [--enrollments 10000000] [--events 100000000]
        [--small-enrollments 100000] [--small-events 1000000] [--months 15] [--budget 60]

Both databases (``eseq_bench_<run>_small`` and ``_large``) are dropped at the end.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from bench import environment, percentiles

RUN, DB, ENV = environment()

from sqlalchemy import text  # noqa: E402

from analytics.event_partitions import month_start, partition_for  # noqa: E402
from models import db  # noqa: E402
from models.base import utcnow  # noqa: E402
from tests.support import factories  # noqa: E402
from tests.support.database import fresh_database  # noqa: E402
# Importing the tasks configures the database from the environment: done here, so
# that each measured database's db.configure below comes after it.
from tasks.batching import ADVANCE_BATCH, fan_out  # noqa: E402
from tasks.sequencing import advance  # noqa: E402

DUE = 10_000
SEND_BATCH = 500
SHORT_DAYS = 60


def _sql(statement: str, **params: Any) -> None:
    with db.get_engine().begin() as c:
        c.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        c.execute(text("SET LOCAL synchronous_commit = off"))
        c.execute(text(statement), params)


def _say(started: float, what: str) -> None:
    print(f"  {what} ({time.perf_counter() - started:,.0f} s)", flush=True)


def seed(enrollments: int, events: int, months: int) -> tuple[int, int]:
    """The accounts (main, short retention) seeded as the module says."""
    main, short = factories.account("Bench"), factories.account("Short")
    sequence = factories.sequence(main, [{"type": "email", "subject": "Hello", "text": "x"}])
    with db.get_engine().connect() as c:
        step = c.execute(text("SELECT id FROM steps WHERE sequence_id = :s"), {"s": sequence}).scalar_one()
    started = time.perf_counter()
    _sql("UPDATE accounts SET retention_events_days = :days WHERE id = :a", days=SHORT_DAYS, a=short)
    _sql("INSERT INTO subscribers (account_id, email, status, attributes, tags, created_at, updated_at)"
         " SELECT CASE WHEN g % 20 = 0 THEN :short ELSE :a END, 'u' || g || '@bench.test', 'active', '{}', '[]',"
         " now(), now() FROM generate_series(1, :n) g", a=main, short=short, n=enrollments)
    _say(started, f"{enrollments:,} subscribers")
    # One enrollment per subscriber of the main account: the first DUE due now, the rest later.
    with db.get_engine().connect() as c:
        last_due = c.execute(text("SELECT id FROM subscribers WHERE account_id = :a ORDER BY id OFFSET :n LIMIT 1"),
                             {"a": main, "n": DUE - 1}).scalar_one()
    _sql("INSERT INTO enrollments (account_id, sequence_id, subscriber_id, instance_key, run, status, current_step,"
         " next_run_at, state, enrolled_at, updated_at)"
         " SELECT :a, :s, id, '', 1, 'active', 0, CASE WHEN id <= :last_due"
         "  THEN now() - interval '1 minute' ELSE now() + interval '1 day' * (1 + (id % 30)) END,"
         " '{}', now(), now() FROM subscribers WHERE account_id = :a", a=main, s=sequence, last_due=last_due)
    _say(started, "enrollments")
    # Sent messages over the months (ids in created order), then DUE queued ones whose task was lost.
    span = f"{months * 30} days"
    with db.get_engine().connect() as c:
        low, high = c.execute(text("SELECT min(id), max(id) FROM subscribers")).one()
    _sql("INSERT INTO messages (account_id, subscriber_id, sequence_id, step_id, idempotency_key, status, to_email,"
         " subject, attempts, crashes, meta, created_at, updated_at, sent_at, provider, provider_message_id)"
         " SELECT :a, id, :s, :step, 'bench:' || id, 'sent', email, 'Hello', 1, 0, '{\"position\": 0}', t, t, t,"
         " 'smtp', 'p' || id FROM (SELECT id, email, now() - CAST(:span AS interval)"
         "  + CAST(:span AS interval) * ((id - :low)::float8 / (:high - :low + 1)) AS t"
         "  FROM subscribers WHERE account_id = :a) s", a=main, s=sequence, step=step, span=span, low=low, high=high)
    _sql("INSERT INTO messages (account_id, subscriber_id, sequence_id, step_id, idempotency_key, status, to_email,"
         " subject, attempts, crashes, meta, created_at, updated_at, claimed_until)"
         " SELECT :a, id, :s, :step, 'due:' || id, 'queued', email, 'Hello', 0, 0, '{\"position\": 0}', now(), now(),"
         " now() - interval '1 minute' FROM subscribers WHERE account_id = :a ORDER BY id LIMIT :due",
         a=main, s=sequence, step=step, due=DUE)
    _say(started, "messages")
    _sql("INSERT INTO event_keys (dedup_key, account_id, occurred_at)"
         " SELECT 'sent:' || id, account_id, created_at FROM messages WHERE status = 'sent'")
    _say(started, "event keys")
    seed_events(main, short, events, months)
    _say(started, f"{events:,} events")
    _sql("INSERT INTO rollup_watermarks (account_id, xact, event_id, folded)"
         " SELECT id, (SELECT max(xact) FROM events), (SELECT max(id) FROM events), 0 FROM accounts")
    with db.get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        # The tick's and the send path's tables; events (loaded, then attached) are only analyzed.
        c.execute(text("VACUUM ANALYZE subscribers, enrollments, messages, event_keys"))
        c.execute(text("ANALYZE events"))
    _say(started, "vacuum analyze")
    return main, short


def seed_events(main: int, short: int, events: int, months: int) -> None:
    """One bare table per month, loaded by one INSERT ... SELECT, then attached."""
    with db.get_engine().connect() as c:
        subscribers = c.execute(text("SELECT min(id), max(id) FROM subscribers")).one()
        existing = set(c.execute(text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                                      " WHERE i.inhparent = 'events'::regclass")).scalars())
    now = utcnow()
    first = month_start(now.date(), -(months - 1))
    start_at = partition_for(first).start
    seconds = (now - start_at).total_seconds()
    done = 0
    for add in range(months):
        partition = partition_for(month_start(first, add))
        upto = min(partition.end, now)
        share = round(events * (upto - start_at).total_seconds() / seconds) - done
        if partition.name in existing:  # this month's (empty) partition, made by the migration
            _sql(f"DROP TABLE {partition.name}")
        started = time.perf_counter()
        _sql(f"CREATE TABLE {partition.name} (LIKE events INCLUDING DEFAULTS)")
        _sql(f"INSERT INTO {partition.name} (id, account_id, subscriber_id, name, source, properties, occurred_at,"
             " created_at)"
             " SELECT :base + g, CASE WHEN g % 20 = 0 THEN :short ELSE :main END, :lo + (g::bigint * 7919) % :width,"
             " (ARRAY['sent','delivered','delivered','opened','opened','clicked','purchase','sent'])[1 + g % 8],"
             " 'bench', '{}', :start + (:upto - :start) * (g::float8 / :n), :start + (:upto - :start) * (g::float8 / :n)"
             " FROM generate_series(0, :n - 1) g",
             base=done + 1, short=short, main=main, lo=subscribers[0], width=subscribers[1] - subscribers[0] + 1,
             start=partition.start, upto=upto, n=share)
        loaded = time.perf_counter()
        _sql(f"ALTER TABLE events ATTACH PARTITION {partition.name} FOR VALUES FROM ('{partition.start.isoformat()}')"
             f" TO ('{partition.end.isoformat()}')")
        done += share
        print(f"  {partition.name}: {share:,} rows loaded in {loaded - started:,.0f} s, attached (indexes, checks)"
              f" in {time.perf_counter() - loaded:,.0f} s", flush=True)
    _sql("SELECT setval('events_id_seq', :top)", top=done + 1)


def bench_tick(repeat: int) -> float:
    """p50 seconds of claim + dispatch of the DUE due enrollments."""
    from sequencing.claims import DEFAULT_LEASE, claim_due_enrollments

    times, base = [], utcnow()
    for run in range(repeat + 1):  # the first warms the broker's connection up and is not counted
        now = base + run * (DEFAULT_LEASE + timedelta(minutes=1))  # the last run's leases have run out
        started = time.perf_counter()
        with db.session_scope() as session:
            ids = claim_due_enrollments(session, now, DUE)
        fan_out(advance, ids, ADVANCE_BATCH)
        times.append(time.perf_counter() - started)
        assert len(ids) == DUE, f"claimed {len(ids)}"
    return percentiles(times[1:])[0]


def bench_send() -> dict[str, float]:
    """Microseconds per message of each part of the send path's database work."""
    from delivery.outbox import Accepted, claim_for_dispatch, claim_for_send, mark_sent

    spent = {"claim_for_dispatch": 0.0, "claim_for_send": 0.0, "mark_sent": 0.0}
    sent = 0

    def clock(name: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = call()
        spent[name] += time.perf_counter() - started
        return result

    while True:
        now = utcnow()
        with db.session_scope() as session:
            ids = clock("claim_for_dispatch", lambda: claim_for_dispatch(session, now, SEND_BATCH))
        if not ids:
            break
        with db.session_scope() as session:
            rows = clock("claim_for_send", lambda: claim_for_send(session, ids, now))
        accepted = [Accepted(r.id, r.account_id, r.subscriber_id, "smtp", f"bench-{r.id}", now) for r in rows]
        with db.session_scope() as session:
            sent += len(clock("mark_sent", lambda: mark_sent(session, accepted)))
    assert sent == DUE, f"sent {sent}"
    return {name: seconds / sent * 1e6 for name, seconds in spent.items()}


def bench_prune(budget: float) -> dict[str, str]:
    from analytics.retention import BATCH, plan, run_step

    started = time.perf_counter()
    with db.session_scope() as session:
        steps = plan(session, utcnow())
    figures = {"plan": f"{time.perf_counter() - started:.2f} s ({len(steps)} steps)"}
    drops = [s for s in steps if s.kind == "drop_partition"]
    if drops:
        with db.get_engine().connect() as c:
            rows = c.execute(text(f"SELECT count(*) FROM {drops[0].table}")).scalar()
        started = time.perf_counter()
        with db.session_scope() as session:
            assert run_step(session, drops[0])
        figures["drop a month"] = f"{(time.perf_counter() - started) * 1000:,.0f} ms ({rows:,} rows)"
    for kind in ("events", "bodies"):
        done, started = 0, time.perf_counter()
        for step in [s for s in steps if s.kind == kind]:
            while time.perf_counter() - started < budget:
                with db.session_scope() as session:
                    pruned = run_step(session, step)
                done += pruned
                if pruned < BATCH:
                    break
        elapsed = time.perf_counter() - started
        figures[f"{kind} batches"] = f"{done / elapsed:,.0f} rows/s ({done:,} in {elapsed:.1f} s)"
    return figures


def flush_broker() -> None:
    import redis

    client = redis.Redis.from_url(ENV["REDIS_URL"])
    for key in client.scan_iter(f"{ENV['ESEQ_BROKER_PREFIX']}*"):
        client.delete(key)


def measure(name: str, enrollments: int, events: int, months: int, repeat: int, budget: float) -> dict[str, str]:
    with fresh_database(f"{DB}_{name}") as url:
        db.configure(url)
        started = time.perf_counter()
        print(f"{name}: seeding {enrollments:,} enrollments and {events:,} events", flush=True)
        seed(enrollments, events, months)
        print(f"{name}: seeded in {time.perf_counter() - started:,.0f} s", flush=True)
        figures = {"tick (claim + dispatch of 10,000), p50": f"{bench_tick(repeat) * 1000:,.0f} ms"}
        figures.update({f"send path: {part}": f"{us:,.0f} us/message" for part, us in bench_send().items()})
        figures.update({f"prune: {part}": value for part, value in bench_prune(budget).items()})
        with db.get_engine().connect() as c:
            figures["database size"] = c.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))"
                                                      )).scalar_one()
        for key, value in figures.items():
            print(f"  {key}: {value}", flush=True)
        db.get_engine().dispose()
        flush_broker()
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--enrollments", type=int, default=10_000_000)
    parser.add_argument("--events", type=int, default=100_000_000)
    parser.add_argument("--small-enrollments", type=int, default=100_000)
    parser.add_argument("--small-events", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=15, help="months of events, up to now")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of each kind of pruning batches")
    args = parser.parse_args()
    print(f"run {RUN}, {date.today()}", flush=True)
    small = measure("small", args.small_enrollments, args.small_events, args.months, args.repeat, args.budget)
    large = measure("large", args.enrollments, args.events, args.months, args.repeat, args.budget)
    width = max(len(k) for k in small)
    print(f"\n{'':{width}}  {'small':>32}  {'large':>32}")
    print(f"{'enrollments / events':{width}}  {f'{args.small_enrollments:,} / {args.small_events:,}':>32}"
          f"  {f'{args.enrollments:,} / {args.events:,}':>32}")
    for key in small:
        print(f"{key:{width}}  {small[key]:>32}  {large.get(key, '-'):>32}")


if __name__ == "__main__":
    main()
