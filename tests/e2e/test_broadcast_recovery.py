"""A broadcast through the real processes (beat, a default worker, a send worker)
while both workers are killed with kill -9 and the broker is flushed: every
member gets it, and a duplicate only inside the documented window (a send
worker killed between the SMTP server's 250 and our commit), counted and printed."""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import Broadcast, Message, db
from models.base import utcnow
from tests.e2e.test_recovery import env_for, flush_broker, sending_ids
from tests.support import factories
from tests.support.broadcasts import scheduled, topic_with
from tests.support.processes import Proc, beat_argv, running, worker_argv
from tests.support.smtp import SmtpServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

MEMBERS = 500


def sent_count() -> int:
    with db.session_scope() as s:
        return int(s.scalar(select(func.count()).where(Message.status == "sent")) or 0)


def status_of(broadcast_id: int) -> str:
    with db.session_scope() as s:
        return str(s.scalar(select(Broadcast.status).where(Broadcast.id == broadcast_id)))


def test_killed_workers_and_a_flushed_broker_lose_no_member_and_send_none_twice_outside_the_window(
        tmp_path: Path, broker_url: str):
    with SmtpServer() as smtp:
        smtp.handler.delay = 0.005  # each SMTP transaction takes a moment, so kills land mid-batch
        env = env_for(smtp, broker_url)
        acct = factories.account()
        topic_with(acct, factories.subscribers(acct, MEMBERS))
        bid = scheduled(acct, utcnow())
        beat = Proc("beat", beat_argv(tmp_path / "schedule"), env, tmp_path)
        interrupted: set[int] = set()
        kills = 0
        with running([beat]):
            for round_, target in enumerate((150,)):
                # The pools as the Procfile runs them: default on prefork, send on threads.
                default = Proc(f"default{round_}",
                               worker_argv(f"d{round_}", queues="default", pool="prefork", concurrency=2), env, tmp_path)
                send = Proc(f"send{round_}", worker_argv(f"s{round_}", queues="send", concurrency=8), env, tmp_path)
                with running([default, send]):
                    wait_for(lambda: sent_count() >= target, 90, f"{target} sent before kill {round_}",  # noqa: B023
                             detail=send.tail)
                    send.kill()
                    default.kill()
                kills += 1
                interrupted |= sending_ids()  # no worker alive: a row still sending was cut off
                flush_broker(broker_url)  # everything the broker held is gone, as after a broker restart
            final = [Proc("default", worker_argv("d", queues="default", pool="prefork", concurrency=2), env, tmp_path),
                     Proc("send", worker_argv("s", queues="send", concurrency=8), env, tmp_path)]
            with running(final):
                # Every message of it sent (its status says "sent" at its next check,
                # FINISH_CHECK later; the integration tests see that step).
                wait_for(lambda: sent_count() == MEMBERS, 90, "every message of the broadcast sent",
                         detail=lambda: f"{status_of(bid)} sent={sent_count()}")
                time.sleep(1)

        assert interrupted, "no kill landed mid-batch (no message was left sending)"
        by_id = Counter(got.message["Message-ID"] for got in smtp.handler.received)
        recipients = Counter(r for got in smtp.handler.received for r in got.recipients)
        assert set(recipients) == {f"user{i}@example.test" for i in range(MEMBERS)}, "every member got it"
        assert len(by_id) == MEMBERS, "one Message-ID per member (derived from its outbox key)"
        with db.session_scope() as s:
            assert s.scalar(select(func.count()).where(Message.broadcast_id == bid)) == MEMBERS
            retried = set(s.scalars(select(Message.to_email).where(Message.broadcast_id == bid, Message.attempts > 1)))
        duplicates = {r: n for r, n in recipients.items() if n > 1}
        # The documented window only: a duplicate was necessarily claimed again after its worker died ...
        assert set(duplicates) <= retried
        # ... and there are at most two per send thread and kill (one committing while the next goes out).
        extra = sum(n - 1 for n in duplicates.values())
        assert extra <= kills * 8 * 2
        print(f"members={MEMBERS} kills={kills} interrupted={len(interrupted)} duplicates={extra}")
