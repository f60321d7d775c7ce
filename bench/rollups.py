"""Benchmark of the analytics rollups on PostgreSQL (issue: analytics pool).

On a database of its own, seeded in SQL (generate_series): one sequence with
``--enrollments`` enrollments, two email steps (the first with variants A and B
in an experiment on clicks), a message per enrollment and email step, and
``--events`` events over them (sent, delivered, opens, clicks, bounces) plus goal
events ("purchase", with a value).
Measures and prints:
1. the fold of the whole table, as the analytics pool's task runs it (chunks of
   analytics.rollups.CHUNK, each committed): events folded per second;
2. an incremental fold: 100,000 more events, with the history in the table;
3. the analytics and experiments endpoints (through the Flask app, in process):
   p50/p99 of 200 requests;
4. the folding process's peak memory (RSS);
5. the funnel: step transitions for the seeded enrollments as the engine writes
   them (a few rows per advance batch of 200) folded, then ``--flow-tail`` more
   rows left unfolded; p50/p99 of the funnel read live from enrollments' positions
   as it was before migration 0018 (``live_funnel``, in process) and of today's
   (``step_funnel`` in process, and the endpoint), and whether they agree.
``--funnel-only``: part 5 alone, with ``--events`` taken as 0 (the funnel reads no
events). ``--lag-rate N`` instead: with events written at N/s, the fold run every 10 s as
beat runs it, how far behind the clock the rollups' ``as_of`` gets.

Run: ``.venv/bin/python -m bench.rollups [--events 10000000] [--enrollments 1000000]``.
"""
from __future__ import annotations

import argparse
import time

from bench import bench_account, environment, timed

RUN, DB, ENV = environment()

import psutil  # noqa: E402
from sqlalchemy import text  # noqa: E402

from models import db  # noqa: E402
from tests.support.database import fresh_database  # noqa: E402

NAMES = "ARRAY['sent','delivered','opened','opened','clicked','opened','bounced','clicked','opened','unsubscribed']"


def seed(account: int, sequence: int, enrollments: int, events: int, first_event: int = 0,
         messages: bool = True) -> None:
    """Everything in SQL; returns the ids the rest needs."""
    with db.get_engine().begin() as c:
        if first_event == 0:
            steps = list(c.execute(text("SELECT id FROM steps WHERE sequence_id = :s ORDER BY position"),
                                   {"s": sequence}).scalars())
            c.execute(text("INSERT INTO subscribers (account_id, email, status, tags, attributes, created_at, updated_at)"
                           " SELECT :a, 'u' || g || '@bench.test', 'active', '[]', '{}', now(), now()"
                           " FROM generate_series(1, :n) g"), {"a": account, "n": enrollments})
            first_sub = c.execute(text("SELECT min(id) FROM subscribers WHERE account_id = :a"), {"a": account}).scalar_one()
            c.execute(text("INSERT INTO enrollments (account_id, sequence_id, subscriber_id, instance_key, run, status,"
                           " current_step, state, enrolled_at, updated_at)"
                           " SELECT :a, :s, :f + g, '', 1, CASE WHEN g % 10 = 0 THEN 'completed' ELSE 'active' END,"
                           " CASE WHEN g % 10 = 0 THEN 3 ELSE 1 + (g % 2) END, '{}',"
                           " now() - interval '30 days', now() FROM generate_series(0, :n - 1) g"),
                      {"a": account, "s": sequence, "f": first_sub, "n": enrollments})
            if not messages:
                c.execute(text("ANALYZE"))
                return
            c.execute(text(
                "INSERT INTO messages (account_id, subscriber_id, sequence_id, step_id, variant, idempotency_key, status,"
                " to_email, attempts, meta, created_at, updated_at, sent_at)"
                " SELECT :a, :f + (g % :n), :s, CASE WHEN g < :n THEN :s0 ELSE :s2 END,"
                " CASE WHEN g >= :n THEN NULL WHEN g % 2 = 0 THEN 'A' ELSE 'B' END, 'bench:' || g, 'sent',"
                " 'u' || g || '@bench.test', 1, '{}', now(), now(), now() - interval '29 days' + (g / :n) * interval '1 day'"
                " FROM generate_series(0, 2 * :n - 1) g"),
                {"a": account, "s": sequence, "f": first_sub, "n": enrollments, "s0": steps[0], "s2": steps[2]})
        first_msg, first_sub, messages = c.execute(text(
            "SELECT min(id), min(subscriber_id), count(*) FROM messages WHERE account_id = :a"), {"a": account}).first()
        # Nineteen in twenty events are about a message; one in twenty a purchase.
        c.execute(text(
            f"INSERT INTO events (account_id, subscriber_id, message_id, name, dedup_key, source, properties, value,"
            f" occurred_at, created_at)"
            f" SELECT :a, :fs + ((g / 20) % (:m / 2)), CASE WHEN g % 20 = 19 THEN NULL ELSE :fm + (g % :m) END,"
            f" CASE WHEN g % 20 = 19 THEN 'purchase' ELSE ({NAMES})[1 + (g + g / :m) % 10] END,"
            f" NULL, 'bench', '{{}}', CASE WHEN g % 20 = 19 THEN 10 + g % 90 END,"
            f" now() - interval '28 days' + (g % 27) * interval '1 day', now()"
            f" FROM generate_series(:lo, :hi - 1) g"),
            {"a": account, "fs": first_sub, "fm": first_msg, "m": messages, "lo": first_event, "hi": first_event + events})
        c.execute(text("ANALYZE"))


# Per advance batch of 200 of the seeded enrollments (80 wait at step 1, 100 at
# step 2, 20 completed): the transitions the engine records, (position, kind, n).
FLOW_BATCH = [(0, "passed", 200), (1, "entered", 200), (1, "passed", 120), (2, "entered", 120), (2, "passed", 20),
              (3, "completed", 20)]


def seed_flow(account: int, sequence: int, enrollments: int, first: int, last: int) -> int:
    """Transition rows of advance batches ``first``..``last - 1`` (the enrollments'
    "entered 0" with the first batch: one row per 10,000 enrolled, as the API writes
    them), spread over 30 days; the rows written."""
    values = ", ".join(f"({p}, '{k}', {n})" for p, k, n in FLOW_BATCH)
    batches = enrollments // 200
    with db.get_engine().begin() as c:
        if first == 0:
            c.execute(text("INSERT INTO step_transitions (account_id, sequence_id, position, kind, n, occurred_at)"
                           " SELECT :a, :s, 0, 'entered', 10000, now() - interval '30 days'"
                           " FROM generate_series(1, :n / 10000)"), {"a": account, "s": sequence, "n": enrollments})
        c.execute(text(
            "INSERT INTO step_transitions (account_id, sequence_id, position, kind, n, occurred_at)"
            f" SELECT :a, :s, v.p, v.k, v.n, now() - interval '30 days' + (b * interval '30 days') / :batches"
            f" FROM generate_series(:first, :last - 1) b CROSS JOIN (VALUES {values}) AS v(p, k, n) ORDER BY b"),
            {"a": account, "s": sequence, "first": first, "last": last, "batches": batches})
        c.execute(text("ANALYZE step_transitions"))
    return (last - first) * len(FLOW_BATCH) + (enrollments // 10000 if first == 0 else 0)


def live_funnel(session: object, sequence: object) -> list[dict[str, object]]:
    """The funnel as it was read before migration 0018: from enrollments' current
    positions, one grouped query over the sequence's enrollments (kept here as the
    "before" of the benchmark)."""
    from collections import defaultdict

    from sqlalchemy import func, select

    from models import Enrollment

    goal = Enrollment.exit_reason.like("goal:%")
    at: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for position, status, by_goal, n in session.execute(  # type: ignore[attr-defined]
            select(Enrollment.current_step, Enrollment.status, goal, func.count())
            .where(Enrollment.sequence_id == sequence.id, Enrollment.account_id == sequence.account_id)  # type: ignore[attr-defined]
            .group_by(Enrollment.current_step, Enrollment.status, goal)):
        key = ("waiting" if status in ("active", "paused") else "exited_goal" if status == "exited" and by_goal
               else "exited_condition" if status == "exited" else status)
        at[int(position)][key] += int(n)
    steps = sorted(sequence.steps, key=lambda s: s.position)  # type: ignore[attr-defined]
    beyond = sum(sum(counts.values()) for position, counts in at.items() if position >= len(steps))
    rows = []
    for step in reversed(steps):
        here = at.get(step.position, {})
        stopped = sum(here.values())
        rows.append({"step": step.position, "entered": beyond + stopped, "passed": beyond,
                     "waiting": here.get("waiting", 0)})
        beyond += stopped
    return list(reversed(rows))


def bench_funnel(client: object, key: str, account: int, sequence: int, enrollments: int, tail: int) -> None:
    from analytics.funnel import step_funnel
    from models import Sequence

    batches = enrollments // 200
    tail_batches = min(batches, tail // len(FLOW_BATCH))
    rows = seed_flow(account, sequence, enrollments, 0, batches - tail_batches)
    folded, seconds = fold(account, transitions=True)
    print(f"flow fold: {folded:,} transition rows ({enrollments:,} enrollments' moves) in {seconds:.2f} s", flush=True)
    rows += seed_flow(account, sequence, enrollments, batches - tail_batches, batches)
    print(f"step transitions: {rows:,} rows, {tail_batches * len(FLOW_BATCH):,} of them not folded", flush=True)
    with db.session_scope() as s:
        seq = s.get(Sequence, sequence)
        before = [{k: r[k] for k in ("step", "entered", "passed", "waiting")} for r in live_funnel(s, seq)]
        after = [{k: r[k] for k in ("step", "entered", "passed", "waiting")} for r in step_funnel(s, seq)]
        print(f"funnel, positions (before) == transitions (after): {before == after}  {after}", flush=True)
        for name, call, calls in (("before: live from positions", lambda: live_funnel(s, seq), 100),
                                  ("after: folded + unfolded tail", lambda: step_funnel(s, seq), 200)):
            p50, p99 = timed(call, calls)
            print(f"funnel query, {name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({calls} calls in process)", flush=True)
    p50, p99 = endpoint(client, key, sequence, "funnel", requests=200)
    print(f"GET funnel ({enrollments:,} enrollments): p50 {p50:.1f} ms, p99 {p99:.1f} ms (200 requests)", flush=True)


def fold(account: int, transitions: bool = False) -> tuple[int, float]:
    from analytics.rollups import fold_chunk
    from models.base import utcnow

    started, total = time.perf_counter(), 0
    while True:
        with db.session_scope() as s:
            result = fold_chunk(s, account, utcnow())
        total += result.transitions if transitions else result.events
        if result.caught_up:
            return total, time.perf_counter() - started


def endpoint(client: object, key: str, sequence: int, path: str, requests: int = 200) -> tuple[float, float]:
    def get() -> None:
        response = client.get(f"/api/v1/email-sequences/{sequence}/{path}", headers={"X-API-Key": key})  # type: ignore[attr-defined]
        assert response.status_code == 200, response.get_json()

    return timed(get, requests)


def lag(account: int, rate: int, seconds: int, every: float = 10.0) -> None:
    """Events written at ``rate``/s (batches every 0.1 s, as the send path records
    them) while the fold runs every ``every`` s as beat drives it: after each fold,
    how far ``as_of`` is behind the clock and how many events were left unfolded."""
    import threading

    from analytics.rollups import watermark
    from models.base import utcnow

    with db.get_engine().begin() as c:
        first = c.execute(text("SELECT coalesce(max(id), 0) + 1 FROM events")).scalar_one()
        messages = c.execute(text("SELECT min(id), count(*) FROM messages WHERE account_id = :a"),
                             {"a": account}).first()
    stop = threading.Event()

    def write() -> None:
        n = first
        while not stop.is_set():
            batch = rate // 10
            with db.get_engine().begin() as c:
                c.execute(text(
                    "INSERT INTO events (account_id, message_id, name, source, properties, occurred_at, created_at)"
                    " SELECT :a, :m + (g % :count), 'opened', 'bench', '{}', now(), now()"
                    " FROM generate_series(:lo, :hi) g"),
                    {"a": account, "m": messages[0], "count": messages[1], "lo": n, "hi": n + batch - 1})
            n += batch
            stop.wait(0.1)

    writer = threading.Thread(target=write)
    writer.start()
    worst, started = 0.0, time.perf_counter()
    try:
        while time.perf_counter() - started < seconds:
            time.sleep(every)
            folded, took = fold(account)
            with db.session_scope() as s:
                behind = (utcnow() - watermark(s, account)["as_of"]).total_seconds()
            worst = max(worst, behind + every)
            print(f"  fold: {folded:,} events in {took:.2f} s; as_of {behind:.1f} s behind the clock after it",
                  flush=True)
    finally:
        stop.set()
        writer.join()
    print(f"lag at {rate:,} events/s: at most {worst:.1f} s (the fold interval plus as_of's distance after a fold)",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--enrollments", type=int, default=1_000_000)
    parser.add_argument("--lag-rate", type=int, default=0, help="only: measure the lag at this many events/s")
    parser.add_argument("--funnel-only", action="store_true", help="only: the funnel's part, with no events")
    parser.add_argument("--flow-tail", type=int, default=6_000,
                        help="step transition rows left unfolded when the funnel is read (a fold's lag of them)")
    args = parser.parse_args()
    with fresh_database(DB) as url:
        from tests.support import factories
        from web.app import create_app

        client = create_app().test_client()
        created = bench_account(client, ENV)
        steps = [{"type": "email", "subject": "a", "text": "a", "variants": [{"name": "A"}, {"name": "B"}],
                  "experiment": {"metric": "clicked", "confidence": 0.95, "holdout_percent": 0}},
                 {"type": "delay", "seconds": 86400}, {"type": "email", "subject": "b", "text": "b"}]
        ids = {"account": created["id"], "sequence": factories.sequence(
            created["id"], steps, settings={"goal": {"event": "purchase", "within_days": 7}})}
        started = time.perf_counter()
        if args.funnel_only:
            seed(ids["account"], ids["sequence"], args.enrollments, 0, messages=False)
            print(f"seeded {args.enrollments:,} enrollments in {time.perf_counter() - started:.0f} s", flush=True)
            bench_funnel(client, created["api_key"], ids["account"], ids["sequence"], args.enrollments, args.flow_tail)
            return
        seed(ids["account"], ids["sequence"], args.enrollments, args.events)
        if args.lag_rate:
            fold(ids["account"])
            lag(ids["account"], args.lag_rate, 60)
            return
        print(f"seeded {args.enrollments:,} enrollments, {2 * args.enrollments:,} messages and {args.events:,} events"
              f" in {time.perf_counter() - started:.0f} s", flush=True)
        folded, seconds = fold(ids["account"])
        print(f"full fold: {folded:,} events in {seconds:.1f} s = {folded / seconds:,.0f} events/s", flush=True)
        seed(ids["account"], ids["sequence"], args.enrollments, 100_000, first_event=args.events)
        folded, seconds = fold(ids["account"])
        print(f"incremental fold with {args.events:,} events of history: {folded:,} new events in {seconds:.2f} s"
              f" = {folded / seconds:,.0f} events/s", flush=True)
        print(f"folding process peak RSS: {psutil.Process().memory_info().rss / 2**20:.0f} MiB "
              f"(this process, which also seeded; the fold itself runs in PostgreSQL)", flush=True)
        p50, p99 = endpoint(client, created["api_key"], ids["sequence"], "analytics")
        print(f"GET analytics: p50 {p50:.1f} ms, p99 {p99:.1f} ms (200 requests, in-process Flask client)", flush=True)
        p50, p99 = endpoint(client, created["api_key"], ids["sequence"], "experiments")
        print(f"GET experiments (step 0: A vs B on clicks): p50 {p50:.1f} ms, p99 {p99:.1f} ms (200 requests)",
              flush=True)
        bench_funnel(client, created["api_key"], ids["account"], ids["sequence"], args.enrollments, args.flow_tail)
        with db.get_engine().begin() as c:
            rows = c.execute(text("SELECT metric, sum(uniques), sum(total), sum(revenue) FROM sequence_rollups"
                                  " GROUP BY metric ORDER BY metric")).all()
            raw = c.execute(text("SELECT count(*) FROM events WHERE message_id IS NOT NULL")).scalar_one()
        print("rollups (uniques/total, revenue):",
              ", ".join(f"{m} {u:,}/{t:,}" + (f" ({r:,.0f})" if r else "") for m, u, t, r in rows))
        counted = sum(t for m, _u, t, _r in rows if m != "converted")
        print(f"message events in the rollups {counted:,} = in the table {raw:,}: {counted == raw}")


if __name__ == "__main__":
    main()
