"""Benchmark: counting segments of three leaves on PostgreSQL (issue: audiences and
broadcasts, the segment figure).

On a database of its own, seeded in SQL (generate_series, not the API):
``--subscribers`` subscribers with attributes (plan, country, age), tags (vip for
one in twenty, beta for one in seven), time zones and a few non-active statuses,
and ``--events`` events spread over them and over the last 180 days (sent,
delivered, opened, clicked, purchase). Then ANALYZE, and for each segment below:
the member count as ``GET /segments/{id}`` computes it (audience.segments.
count_members, in process), first run and p50/p99 of ``--repeat`` more, and the
EXPLAIN (ANALYZE, BUFFERS) plan of the count. ``--enroll`` also times enrolling a
segment of about 100,000 members into a sequence (sequencing.segment_enroll) and
the "entered segment" trigger's first check of a segment of every subscriber
(sequencing.segment_entries), both rolled back.

    python -m bench.segments [--subscribers 1000000] [--events 20000000] [--repeat 5]
        [--enroll] [--keep] [--reuse eseq_bench_xxxxxx] [--no-plans]

``--keep`` leaves the database for another run (``--reuse`` names it, skipping the
seeding); drop it when done: ``dropdb -h 127.0.0.1 -U postgres eseq_bench_xxxxxx``.
"""
from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from collections.abc import Iterator
from typing import Any

from bench import bench_account, environment, timed

RUN, DB, ENV = environment()

from sqlalchemy import text  # noqa: E402

from models import db  # noqa: E402
from models.base import utcnow  # noqa: E402
from tests.support.database import fresh_database, url_for  # noqa: E402

SEGMENTS: dict[str, dict[str, Any]] = {
    "pro + clicked in 30 days + vip": {"all": [
        {"attribute": "plan", "op": "eq", "value": "pro"}, {"clicked_within_days": 30}, {"tag": "vip"}]},
    "pro + 2 purchases in 90 days + vip": {"all": [
        {"attribute": "plan", "op": "eq", "value": "pro"},
        {"event": "purchase", "count_gte": 2, "within_days": 90}, {"tag": "vip"}]},
    "country in (de, fr) + age >= 40 + opened in 7 days": {"all": [
        {"attribute": "country", "op": "in", "value": ["de", "fr"]},
        {"attribute": "age", "op": "gte", "value": 40}, {"opened_within_days": 7}]},
    "clicked in 30 days, alone": {"clicked_within_days": 30},
}
ENROLL_SEGMENT = {"all": [{"attribute": "plan", "op": "eq", "value": "team"},
                          {"attribute": "country", "op": "in", "value": ["de", "fr", "us"]}]}
CHUNK = 2_000_000


def seed(account: int, subscribers: int, events: int) -> None:
    """Subscribers and events, in SQL, committed a chunk of events at a time."""
    with db.get_engine().begin() as c:
        c.execute(text("SELECT setseed(0.21)"))  # the same audience every run
        c.execute(text(
            "INSERT INTO subscribers (account_id, email, status, timezone, tags, attributes, created_at, updated_at)"
            " SELECT :a, 'u' || g || '@' || (ARRAY['example.com','mail.test','corp.test'])[1 + g % 3],"
            " CASE WHEN r < 0.02 THEN 'unsubscribed' WHEN r < 0.03 THEN 'bounced' ELSE 'active' END,"
            " (ARRAY['Europe/Berlin','America/New_York','Asia/Tokyo',NULL])[1 + floor(random() * 4)::int],"
            " CASE WHEN random() < 0.05 THEN '[\"vip\"]' WHEN random() < 0.15 THEN '[\"beta\"]' ELSE '[]' END::jsonb,"
            " jsonb_build_object('plan', (ARRAY['free','pro','team','free'])[1 + floor(random() * 4)::int],"
            "   'country', (ARRAY['de','fr','us','gb','jp','br','in','es'])[1 + floor(random() * 8)::int],"
            "   'age', 18 + floor(random() * 60)::int),"
            " now() - random() * interval '1000 days', now()"
            " FROM (SELECT g, random() AS r FROM generate_series(1, :n) g) s"), {"a": account, "n": subscribers})
        first = c.execute(text("SELECT min(id) FROM subscribers WHERE account_id = :a"), {"a": account}).scalar_one()
    done = 0
    while done < events:
        n = min(CHUNK, events - done)
        started = time.perf_counter()
        with db.get_engine().begin() as c:
            # Random subscribers (events land all over the table, as real history
            # does) and times over 180 days; names weighted like mail: more sends than clicks.
            c.execute(text("SELECT setseed(:seed)"), {"seed": 1 / (2 + done / CHUNK)})
            c.execute(text(
                "INSERT INTO events (account_id, subscriber_id, name, source, properties, occurred_at, created_at)"
                " SELECT :a, :f + floor(random() * :s)::int,"
                " (ARRAY['sent','sent','sent','delivered','delivered','delivered','opened','opened','clicked',"
                "   'purchase'])[1 + floor(random() * 10)::int], 'bench', '{}',"
                " now() - random() * interval '180 days', now()"
                " FROM generate_series(:lo, :hi) g"), {"a": account, "f": first, "s": subscribers, "lo": done,
                                                        "hi": done + n - 1})
        done += n
        print(f"  events: {done:,} ({n / (time.perf_counter() - started):,.0f} rows/s)", flush=True)
    with db.get_engine().connect() as c:
        c.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def explain(query: Any) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of ``query`` as the engine would run it."""
    engine = db.get_engine()
    compiled = query.compile(bind=engine, compile_kwargs={"render_postcompile": True})
    with engine.connect() as c:
        rows = c.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + str(compiled), dict(compiled.params)).scalars()
        return "\n".join(f"    {line}" for line in rows)


def count_segments(account: int, repeat: int, plans: bool) -> None:
    from audience.segment_filter import count_query, validate_filter
    from audience.segments import count_members

    for name, raw in SEGMENTS.items():
        node = validate_filter(raw)
        with db.session_scope() as s:
            started = time.perf_counter()
            members = count_members(s, account, node, utcnow())
            first = time.perf_counter() - started
            p50, p99 = timed(lambda: count_members(s, account, node, utcnow()), repeat)
        print(f"{name}: {members:,} members; first {first * 1000:,.0f} ms, p50 {p50:,.0f} ms, p99 {p99:,.0f} ms"
              f" ({repeat} runs)", flush=True)
        if plans:
            print(explain(count_query(account, node, utcnow())), flush=True)


def enroll_and_snapshot(account: int) -> None:
    """Enroll a segment of ~100,000 into a sequence, and the trigger's first check of
    everyone; each in a transaction rolled back afterwards."""
    from audience.segments import count_members, create_segment
    from models import Sequence, Step
    from sequencing.segment_enroll import enroll_segment
    from sequencing.segment_entries import check_segment

    with db.session_scope() as s:
        now = utcnow()
        sequence = Sequence(account_id=account, name="Bench", status="active", settings={"holdout_percent": 10})
        sequence.steps = [Step(position=0, type="email", config={"subject": "Hi", "text": "Hello"})]
        segment = create_segment(s, account, "enroll", ENROLL_SEGMENT, now)
        everyone = create_segment(s, account, "everyone", {"all": []}, now)
        s.add(sequence)
        s.flush()
        print(f"enroll a segment: {count_members(s, account, segment.filter, now):,} members", flush=True)
        started = time.perf_counter()
        outcome = enroll_segment(s, account, sequence.id, segment.id, now)
        enrolled, skipped = outcome.enrolled, outcome.skipped
        print(f"  enrolled {enrolled:,} (skipped {skipped:,}) in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        check_segment(s, everyone.id, now)
        print(f"trigger's first check of a segment of everyone: {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        check_segment(s, everyone.id, now)
        print(f"  the next check, nobody entering: {time.perf_counter() - started:.1f} s", flush=True)
        s.rollback()


@contextmanager
def database(reuse: str | None, keep: bool) -> Iterator[tuple[str, bool]]:
    """(url, seeded already) of the bench database: a reused one, or a fresh one
    dropped afterwards unless ``keep``."""
    if reuse:
        yield url_for(reuse), True
        return
    if keep:
        from tests.support.database import ADMIN_URL, _admin_exec, migrate

        _admin_exec(f'CREATE DATABASE "{DB}"', ADMIN_URL)
        migrate(url_for(DB))
        print(f"keeping database {DB}", flush=True)
        yield url_for(DB), False
        return
    with fresh_database(DB) as url:
        yield url, False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--enroll", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse")
    parser.add_argument("--no-plans", action="store_true")
    args = parser.parse_args()
    with database(args.reuse, args.keep) as (url, seeded):
        db.configure(url)
        if seeded:
            with db.get_engine().connect() as c:
                account = c.execute(text("SELECT min(id) FROM accounts")).scalar_one()
        else:
            from web.app import create_app

            account = bench_account(create_app().test_client(), ENV)["id"]
            started = time.perf_counter()
            seed(account, args.subscribers, args.events)
            print(f"seeded {args.subscribers:,} subscribers and {args.events:,} events in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
        with db.get_engine().connect() as c:
            print("indexes:", ", ".join(c.execute(text(
                "SELECT indexname FROM pg_indexes WHERE tablename IN ('subscribers', 'events') ORDER BY 1")).scalars()))
        count_segments(account, args.repeat, not args.no_plans)
        if args.enroll:
            enroll_and_snapshot(account)
        db.get_engine().dispose()


if __name__ == "__main__":
    main()
