"""Benchmark of AI drafting (issue: AI drafting), through the real ai worker process.

1. Overhead: the platform's own time per draft beyond the model's. A fake
   chat-completions server (in this process, answering at once) stands in for the
   model; ``--drafts`` sequence drafts (five emails each, every brief different so
   none comes from the cache) run one after another on a real ``worker_ai``
   (threads, AI_CONCURRENCY 4). Per draft: the task's time from claim to outcome
   (claim, attribute names, cache lookup, budget, prompt, the HTTP call, parsing,
   validation, sanitising, the pre-flight of every email, the write) minus
   ``model_seconds`` (the HTTP call's wall time); and from enqueue to ``ready`` seen
   by polling every 5 ms, minus the same (adds the broker hop and the poll).
2. A burst: ``--emails`` due enrollments sent through real beat (1 s tick),
   ``worker_default`` (prefork 2) and ``worker_send`` (threads 50) into a loopback
   SMTP server, with the ai worker running; alone, while 200 drafts are queued at
   the moment the enrollments are made due, and the same with the ai worker at
   ``nice 10``, alternated ``--rounds`` times. Side by side: emails/s end to end,
   and the tick task's own run time (p50/p99, from the default worker's log).

Run: ``.venv/bin/python -m bench.ai_overhead [--drafts 100] [--emails 3000] [--burst 200]``
(PostgreSQL and Redis on 127.0.0.1).
"""
from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

from bench import environment, percentiles

RUN, DB, ENV = environment()

from sqlalchemy import select, text  # noqa: E402

from ai import draft_rows  # noqa: E402
from models import AiDraft, db  # noqa: E402
from models.base import utcnow  # noqa: E402
from tests.support import ai_answers, factories  # noqa: E402
from tests.support.database import fresh_database, url_for  # noqa: E402
from tests.support.fake_openai import ChatRequest, FakeOpenAI  # noqa: E402
from tests.support.processes import Proc, beat_argv, platform_env, worker_argv  # noqa: E402
from tests.support.smtp import SmtpServer  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402

STEP = {"type": "email", "subject": "Hello {{ subscriber.first_name }}",
        "html": "<p>Hello {{ subscriber.first_name }}, here is our news.</p>"
                '<p><a href="https://shop.example.test/news">Read it</a></p>'}
TICK = re.compile(r"Task sequencing\.tick\[[^\]]+\] succeeded in ([0-9.]+)s")


def ai_worker(fake: FakeOpenAI, tmp: Path, env: dict[str, str], nice: int = 0, per_minute: int | None = None) -> Proc:
    """As the Procfile's worker_ai runs it; ``nice``: a lower CPU priority, to compare;
    ``per_minute``: ESEQ_AI_DRAFTS_PER_MINUTE (None: the default; 0: no limit)."""
    if per_minute is not None:
        env = {**env, "ESEQ_AI_DRAFTS_PER_MINUTE": str(per_minute)}
    argv = worker_argv("ai", queues="ai", pool="threads", concurrency=4, loglevel="INFO")
    return Proc("ai", (["nice", "-n", str(nice)] if nice else []) + argv,
                {**env, "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": fake.api_key, "OPENAI_MODEL": "bench"},
                tmp)


def queue(account_id: int, n: int, label: str) -> int:
    with db.session_scope() as s:
        brief = {"goal": f"onboard new customers ({label} {n})", "product": "Acme POS", "emails": 5}
        return draft_rows.queue_draft(s, account_id, {"kind": "sequence", "brief": brief}, utcnow(),
                                      model_configured=True).id


def finished(draft_id: int) -> AiDraft | None:
    with db.session_scope() as s:
        row = s.scalar(select(AiDraft).where(AiDraft.id == draft_id, AiDraft.status.in_(("ready", "failed"))))
        if row is not None:
            s.expunge(row)
        return row


def bench_overhead(drafts: int, tmp: Path) -> None:
    from tasks.ai import enqueue_draft

    name = f"{DB}_overhead"
    with fresh_database(name), FakeOpenAI(answerer=ai_answers.good) as fake:
        db.configure(url_for(name))
        account = factories.account("Bench")
        env = platform_env(DATABASE_URL=url_for(name))
        worker = ai_worker(fake, tmp, env, per_minute=0)  # one after another: the rate limit is not measured here
        own, whole, model = [], [], []
        try:
            worker.wait_ready()
            for n in range(drafts + 5):
                draft_id = queue(account, n, "overhead")
                started = time.perf_counter()
                enqueue_draft(draft_id)
                row = None
                while row is None:
                    time.sleep(0.005)
                    row = finished(draft_id)
                seen = time.perf_counter() - started
                assert row.status == "ready", row.error
                if n < 5:
                    continue  # the worker's first drafts warm its imports and connections
                task = (row.finished_at - row.started_at).total_seconds()
                own.append((task - row.model_seconds) * 1000)
                whole.append((seen - row.model_seconds) * 1000)
                model.append(row.model_seconds * 1000)
        finally:
            worker.stop()
            db.get_engine().dispose()
    print(f"drafts: {drafts} sequence drafts of 5 emails, one at a time, fake model answering at once")
    for label, values in (("task's own time (claim to outcome) minus model_seconds", own),
                          ("enqueue to ready seen (5 ms poll) minus model_seconds", whole),
                          ("model_seconds (HTTP call to the fake server)", model)):
        p50, p99 = percentiles(values)
        print(f"  {label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms")


def seed_due_later(emails: int) -> int:
    account = factories.account("Bench")
    sequence = factories.sequence(account, [STEP])
    with db.get_engine().begin() as conn:
        conn.execute(text("""
            INSERT INTO subscribers (account_id, email, first_name, status, attributes, tags, created_at, updated_at)
            SELECT :a, 'reader' || g || '@example.test', 'Reader' || g, 'active', '{"plan": "basic"}', '[]', now(),
                   now() FROM generate_series(1, :n) g"""), {"a": account, "n": emails})
        conn.execute(text("""
            INSERT INTO enrollments (account_id, sequence_id, subscriber_id, instance_key, run, status, current_step,
                                     next_run_at, state, enrolled_at, updated_at)
            SELECT :a, :s, id, '', 1, 'active', 0, now() + interval '1 day', '{}', now(), now()
            FROM subscribers WHERE account_id = :a"""), {"a": account, "s": sequence})
    return account


def bench_burst(label: str, emails: int, burst: int, tmp: Path, nice: int = 0,
                model_seconds: float = 0.0, per_minute: int | None = None) -> dict[str, float]:
    from tasks.ai import enqueue_draft

    name = f"{DB}_{label}"
    def answer(request: ChatRequest) -> str:
        time.sleep(model_seconds)  # the model's own time; the fake server answers each request on its own thread
        return ai_answers.good(request)

    with fresh_database(name), FakeOpenAI(answerer=answer) as fake, SmtpServer() as smtp:
        db.configure(url_for(name))
        account = seed_due_later(emails)
        env = platform_env(DATABASE_URL=url_for(name),  # the broker prefix of this process: it enqueues the drafts
                           ESEQ_TICK_SECONDS="1", SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port),
                           FROM_EMAIL="news@bench.test", PUBLIC_BASE_URL="https://mail.bench.test")
        default = Proc(f"{label}-default", worker_argv("default", queues="default", pool="prefork", concurrency=2,
                                                      loglevel="INFO"), env, tmp)
        procs = [default, Proc(f"{label}-send", worker_argv("send", queues="send", pool="threads", concurrency=50,
                                                            loglevel="INFO", prefetch=4), env, tmp),
                 ai_worker(fake, tmp, env, nice, per_minute)]
        beat = Proc(f"{label}-beat", beat_argv(tmp / f"{label}-schedule"), env, tmp)
        drafts: list[int] = []
        try:
            for proc in procs:
                proc.wait_ready()
            default_log_start = default.log.stat().st_size
            if burst:
                drafts = [queue(account, n, label) for n in range(burst)]
            with db.get_engine().begin() as conn:
                started = conn.execute(text("UPDATE enrollments SET next_run_at = now() RETURNING now()")).scalar()
            for draft_id in drafts:
                enqueue_draft(draft_id)

            def all_sent() -> bool:
                with db.get_engine().connect() as conn:
                    return conn.execute(text("SELECT count(*) FROM messages WHERE status = 'sent'")).scalar() == emails

            wait_for(all_sent, 900, f"{label}: all {emails} emails sent", interval=1.0)
            with db.get_engine().connect() as conn:
                last_sent = conn.execute(text("SELECT max(sent_at) FROM messages")).scalar()
                ready = conn.execute(text("SELECT count(*) FROM ai_drafts WHERE status = 'ready' "
                                          "AND finished_at <= :t"), {"t": last_sent}).scalar()
            if burst:
                wait_for(lambda: all(r is not None for r in map(finished, drafts)), 300, "the drafts to finish",
                         interval=1.0)
                with db.get_engine().connect() as conn:
                    statuses = dict(conn.execute(text("SELECT status, count(*) FROM ai_drafts GROUP BY status")).all())
                    drafts_done = conn.execute(text("SELECT max(finished_at) FROM ai_drafts")).scalar()
                    first = conn.execute(text("SELECT min(started_at) FROM ai_drafts")).scalar()
                    spans = conn.execute(text(
                        "SELECT percentile_cont(0.5) WITHIN GROUP"
                        " (ORDER BY extract(epoch FROM finished_at - started_at)),"
                        " percentile_cont(0.5) WITHIN GROUP (ORDER BY model_seconds), max(attempts)"
                        " FROM ai_drafts")).one()
                took = (drafts_done - started).total_seconds()
                print(f"  {label} (nice {nice}): first draft started {(first - started).total_seconds():.1f} s after; "
                      f"per draft p50 {spans[0] * 1000:.0f} ms of which model {spans[1] * 1000:.0f} ms; "
                      f"max attempts {spans[2]}")
                print(f"  {label} (nice {nice}): drafts {statuses}, the last finished {took:.1f} s after the "
                      "enrollments were made due")
            ticks = [float(t) * 1000 for t in TICK.findall(default.log.read_text()[default_log_start:])]
        finally:
            beat.stop()
            for proc in procs:
                proc.stop()
            db.get_engine().dispose()
    elapsed = (last_sent - started).total_seconds()
    p50, p99 = percentiles(ticks) if ticks else (float("nan"), float("nan"))
    return {"elapsed": elapsed, "rate": emails / elapsed, "tick_p50": p50, "tick_p99": p99, "ticks": len(ticks),
            "drafts_ready_meanwhile": ready}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--drafts", type=int, default=100)
    parser.add_argument("--emails", type=int, default=3000)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="burst part: alternate the runs this many times")
    parser.add_argument("--only", choices=("overhead", "burst"))
    parser.add_argument("--model-seconds", type=float, default=0.0,
                        help="burst part: a column with the model taking this long an answer (a real one takes seconds)")
    parser.add_argument("--nice", action="store_true", help="burst part: a fourth column with the ai worker at nice 10")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "burst":
            bench_overhead(args.drafts, Path(tmp))
        if args.only == "overhead":
            return
        # Alternated, so a change in the machine's load falls on every column alike.
        runs = (("alone", 0, 0, 0.0, None), (f"{args.burst} drafts, model at once", args.burst, 0, 0.0, None),
                (f"{args.burst} at once, no rate limit", args.burst, 0, 0.0, 0))
        if args.model_seconds:
            runs += ((f"{args.burst} drafts, model {args.model_seconds:g} s", args.burst, 0, args.model_seconds, None),)
        if args.nice:
            runs += ((f"{args.burst} drafts, ai at nice 10", args.burst, 10, 0.0, 0),)
        results: dict[str, list[dict[str, float]]] = {label: [] for label, *_ in runs}
        for round_ in range(args.rounds):
            for n, (label, burst, nice, model_seconds, per_minute) in enumerate(runs):
                results[label].append(bench_burst(f"r{round_}n{n}", args.emails, burst, Path(tmp), nice,
                                                  model_seconds, per_minute))
        print(f"sending {args.emails} due enrollments (beat 1 s, default prefork 2, send threads 50, ai threads 4), "
              f"{args.rounds} alternated rounds, each cell one value per round")
        print(f"  {'':30}" + "".join(f"{label:>28}" for label, *_ in runs))
        for key, name, form in (("rate", "emails/s end to end", "{:.0f}"), ("elapsed", "seconds", "{:.1f}"),
                                ("tick_p50", "tick task p50 (ms)", "{:.1f}"),
                                ("tick_p99", "tick task p99 (ms)", "{:.1f}"),
                                ("drafts_ready_meanwhile", "drafts ready by the last send", "{}")):
            cells = [" / ".join(form.format(r[key]) for r in results[label]) for label, *_ in runs]
            print(f"  {name:30}" + "".join(f"{cell:>28}" for cell in cells))


if __name__ == "__main__":
    main()
