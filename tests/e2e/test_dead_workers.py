"""Dead workers noticed in seconds, with the real processes: a send worker killed
with kill -9 mid-run leaves messages ``sending`` under a 300 s lease; its heartbeat
stops, the tick releases them to the in-doubt sweep, and a restarted worker sends
them; the broker is flushed too, and the tick hands out again what it held. The
lease is left at its default, so the run can only finish inside the
test's deadline (far below 300 s) through the liveness path, and the heartbeat
rows say how many messages that path released."""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from models import Message, WorkerHeartbeat, db
from tests.conftest import REDIS_URL, TEST_ENV
from tests.e2e.test_recovery import deliveries, enroll, sending_ids, sent_count, wait_until_finished
from tests.support.processes import Proc, beat_argv, platform_env, running, worker_argv
from tests.support.smtp import SmtpServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

SUBSCRIBERS = 500  # two emails each: 1,000 emails
SEND_THREADS = 8


def released_total() -> int:
    with db.session_scope() as s:
        return int(s.scalar(select(func.coalesce(func.sum(WorkerHeartbeat.released_messages), 0))) or 0)


def released_enrollments() -> int:
    with db.session_scope() as s:
        return int(s.scalar(select(func.coalesce(func.sum(WorkerHeartbeat.released_enrollments), 0))) or 0)


def process_and_children(pid: int) -> set[int]:
    """``pid`` and its children (a prefork worker's pool processes), as /proc lists them."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {pid, *map(int, children)}


def stopped_by_pid() -> dict[int, bool]:
    """Each heartbeat row's process id (core.liveness.new_worker_id) and whether it said it stopped."""
    with db.session_scope() as s:
        return {int(worker_id.split(":")[-2]): stopped_at is not None
                for worker_id, stopped_at in s.execute(select(WorkerHeartbeat.worker_id, WorkerHeartbeat.stopped_at))}


def workers(name: str, env: dict[str, str], logs: Path) -> list[Proc]:
    """The default worker (prefork: tick and advance) and the send worker (threads)."""
    return [Proc(f"default-{name}", worker_argv(f"d-{name}", queues="default,webhooks,analytics", pool="prefork",
                                                concurrency=2), env, logs),
            Proc(f"send-{name}", worker_argv(f"s-{name}", queues="send", concurrency=SEND_THREADS), env, logs)]


def test_killed_workers_and_a_flushed_broker_have_their_work_released_in_seconds_not_after_the_lease(tmp_path: Path):
    with SmtpServer() as smtp:
        smtp.handler.delay = 0.003  # each SMTP transaction takes a moment, so kills land mid-batch
        env = platform_env(ESEQ_TICK_SECONDS="0.5", ESEQ_WORKER_DEAD_AFTER_SECONDS="2", SMTP_HOST="127.0.0.1",
                           SMTP_PORT=str(smtp.port))  # ESEQ_LEASE_SECONDS: the default 300 s
        enroll(SUBSCRIBERS)
        beat = Proc("beat", beat_argv(tmp_path / "schedule"), env, tmp_path)
        kills = 1
        with running([beat]):
            killed = workers("first", env, tmp_path)
            with running(killed):
                wait_for(lambda: sent_count() >= 300, 60, "300 emails sent", detail=killed[1].tail)
                killed_pids = {pid for proc in killed for pid in process_and_children(proc.popen.pid)}
                for proc in killed:  # kill -9 of each whole process group, mid-batch
                    proc.kill()
                    proc.popen.wait(5)
            # No send worker is alive now: a row still "sending" was the dead one's.
            interrupted = sending_ids()
            # And the broker loses what it held (tasks queued for the dead workers),
            # as after a Redis restart that keeps nothing on disk.
            keys = redis.Redis.from_url(REDIS_URL).keys(TEST_ENV["ESEQ_BROKER_PREFIX"] + "*")
            if keys:
                redis.Redis.from_url(REDIS_URL).delete(*keys)
            with running(workers("restarted", env, tmp_path)):
                # Far below the 300 s lease: only the liveness release can make this.
                wait_until_finished(SUBSCRIBERS, timeout=120)
                time.sleep(1)

        assert interrupted, "no kill landed mid-batch (no message was left sending)"
        # The processes killed never said they stopped; the restarted ones, stopped
        # with SIGTERM, did (a stop without the mark would read as a kill).
        stopped = stopped_by_pid()
        assert stopped == {pid: pid not in killed_pids for pid in stopped}
        assert set(stopped.values()) == {True, False}
        assert released_total() >= len(interrupted), "the liveness path, not the lease, released them"
        got = deliveries(smtp)
        expected = {(f"user{i}@example.test", s) for i in range(SUBSCRIBERS) for s in ("first", "second")}
        assert set(got) == expected, "every email of every subscriber arrived"
        by_message_id = Counter(got.message["Message-ID"] for got in smtp.handler.received)
        with db.session_scope() as s:
            assert s.scalar(select(func.count()).select_from(Message)) == 2 * SUBSCRIBERS
            assert len(by_message_id) == 2 * SUBSCRIBERS, "one Message-ID per outbox row"
            retried = set(s.scalars(select(Message.provider_message_id).where(Message.crashes > 0)))
        duplicates = {message_id: n - 1 for message_id, n in by_message_id.items() if n > 1}
        # The documented window: only a message taken by the SMTP server and not yet
        # recorded when its worker died can arrive twice, and it was released as in doubt.
        assert set(duplicates) <= retried
        assert sum(duplicates.values()) <= kills * SEND_THREADS * 2
        print(f"kills={kills} interrupted={len(interrupted)} released={released_total()} "
              f"enrollments released={released_enrollments()} "
              f"duplicates={sum(duplicates.values())}")


def test_worker_processes_beat_from_their_start_and_only_a_clean_stop_marks_the_row(tmp_path: Path):
    # No work at all: a worker killed before its first claim may still have held
    # tasks taken from the broker, so it must have a row to be found silent by.
    env = platform_env()
    threads = Proc("threads", worker_argv("t-idle", queues="send", concurrency=2, loglevel="INFO"), env, tmp_path)
    prefork = Proc("prefork", worker_argv("p-idle", queues="default", pool="prefork", concurrency=1, loglevel="INFO"),
                   env, tmp_path)
    with running([threads, prefork]):
        for proc in (threads, prefork):
            proc.wait_ready()
        [child] = process_and_children(prefork.popen.pid) - {prefork.popen.pid}
        wait_for(lambda: {threads.popen.pid, child} <= set(stopped_by_pid()), 30, "both to beat",
                 detail=lambda: str(stopped_by_pid()))
        assert prefork.popen.pid not in stopped_by_pid(), "a prefork parent runs no task: its child beats"
        threads.kill()
        threads.popen.wait(5)
        prefork.stop()
    assert stopped_by_pid() == {threads.popen.pid: False, child: True}
