"""Recovery from dead workers (issue: scale-out, item 1), through the real processes.

N subscribers enrolled in a one-email sequence, all due at once, sent by beat, a
default worker (prefork) and a send worker (threads) into a loopback SMTP server.
While it runs, kill -9 of the send worker, the default worker or both, at moments
spread over the run (chosen by a seeded random), each restarted at once, with a
flush of the run's broker keys after the middle kill. Printed: emails delivered
(distinct Message-IDs at the sink), duplicates, what the liveness path released,
and how long after the last fault the last email was recorded sent, against the
300 s lease that recovery waited for before.

Run: ``.venv/bin/python -m bench.recovery [--emails 10000] [--kills 10] [--dead-after 15]``
(PostgreSQL and Redis on 127.0.0.1; its database ``eseq_bench_<run>`` is dropped after).
"""
from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench import environment

RUN, DB, ENV = environment()

import redis  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from models import Message, WorkerHeartbeat, db  # noqa: E402
from models.base import utcnow  # noqa: E402
from tests.support import factories  # noqa: E402
from tests.support.database import fresh_database  # noqa: E402
from tests.support.processes import Proc, beat_argv, platform_env, worker_argv  # noqa: E402
from tests.support.smtp import SmtpServer  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402

SEND_THREADS = 8


def sent() -> int:
    with db.session_scope() as s:
        return int(s.scalar(select(func.count()).where(Message.status == "sent")) or 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--dead-after", type=float, default=15.0, help="ESEQ_WORKER_DEAD_AFTER_SECONDS")
    parser.add_argument("--seed", type=int, default=22)
    args = parser.parse_args()
    pick = random.Random(args.seed)
    with fresh_database(DB) as url, SmtpServer() as smtp, tempfile.TemporaryDirectory() as tmp:
        os.environ["DATABASE_URL"] = url
        db.configure(url)
        env = platform_env(**{**ENV, "DATABASE_URL": url}, ESEQ_TICK_SECONDS="1", SMTP_HOST="127.0.0.1",
                           SMTP_PORT=str(smtp.port), ESEQ_WORKER_DEAD_AFTER_SECONDS=str(args.dead_after))
        logs = Path(tmp)
        acct = factories.account()
        seq = factories.sequence(acct, [{"type": "email", "subject": "hello", "text": "Hi {{ subscriber.first_name }}"}])
        factories.enroll(acct, seq, factories.subscribers(acct, args.emails), utcnow())

        def default(n: int) -> Proc:
            return Proc(f"default{n}", worker_argv(f"d{n}", queues="default,webhooks,analytics", pool="prefork",
                                                   concurrency=2), env, logs)

        def send(n: int) -> Proc:
            return Proc(f"send{n}", worker_argv(f"s{n}", queues="send", concurrency=SEND_THREADS), env, logs)

        procs = {"beat": Proc("beat", beat_argv(logs / "schedule"), env, logs), "default": default(0),
                 "send": send(0)}
        started = time.monotonic()
        last_fault = started
        faults = []
        try:
            for k in range(1, args.kills + 1):
                target = k * args.emails // (args.kills + 1) + pick.randint(-args.emails // 50, args.emails // 50)
                wait_for(lambda: sent() >= target, 600, f"{target} sent", interval=0.05,
                         detail=lambda: procs["send"].tail())
                victims = pick.choice((["send"], ["default"], ["send", "default"]))
                for name in victims:
                    procs[name].kill()
                    procs[name].popen.wait(10)
                    procs[name].stop()
                    procs[name] = send(k) if name == "send" else default(k)
                what = "+".join(victims)
                if k == (args.kills + 1) // 2:
                    keys = redis.Redis.from_url(ENV["REDIS_URL"]).keys(ENV["ESEQ_BROKER_PREFIX"] + "*")
                    if keys:
                        redis.Redis.from_url(ENV["REDIS_URL"]).delete(*keys)
                    what += " + broker flush"
                last_fault = time.monotonic()
                faults.append(f"{last_fault - started:.1f}s at {target} sent: {what}")
            wait_for(lambda: sent() >= args.emails, 900, "every email sent", interval=0.2)
            finished = time.monotonic()
            time.sleep(2)  # a duplicate still in flight reaches the sink
        finally:
            for proc in procs.values():
                proc.stop()
        ids = Counter(got.message["Message-ID"] for got in smtp.handler.received)
        with db.session_scope() as s:
            released = s.execute(select(func.count(), func.coalesce(func.sum(WorkerHeartbeat.released_messages), 0),
                                        func.coalesce(func.sum(WorkerHeartbeat.released_enrollments), 0))
                                 .where(WorkerHeartbeat.released_at.is_not(None))).one()
            crashed_ids = set(s.scalars(select(Message.provider_message_id).where(Message.crashes > 0)))
            crashed = len(crashed_ids)
            sent_at = sorted(s.scalars(select(Message.sent_at).where(Message.sent_at.is_not(None))))
        stall = max(((b - a).total_seconds() for a, b in zip(sent_at, sent_at[1:])), default=0.0)
        db.get_engine().dispose()
    print(f"emails={args.emails} kills={args.kills} dead_after={args.dead_after}s tick=1s "
          f"send threads={SEND_THREADS} load={os.getloadavg()[0]:.2f}")
    for line in faults:
        print("  fault", line)
    outside = sum(n - 1 for message_id, n in ids.items() if n > 1 and message_id not in crashed_ids)
    print(f"delivered distinct={len(ids)} of {args.emails}; duplicates={sum(n - 1 for n in ids.values())} "
          f"(outside the in-doubt window, i.e. of a message no crash touched: {outside})")
    print(f"workers released={released[0]} messages released={released[1]} enrollments released={released[2]} "
          f"messages with a crash counted={crashed}")
    print(f"run {finished - started:.1f}s; last email recorded {finished - last_fault:.1f}s after the last fault "
          f"(lease 300 s); longest time with no email recorded sent {stall:.1f}s")


if __name__ == "__main__":
    main()
