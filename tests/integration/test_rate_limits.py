"""Per-provider send-rate limits kept on the provider row in PostgreSQL: workers
racing for slots never share one, and real sends through two racing batches keep
to the rate."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

import delivery.batch
from delivery.circuits import reserve_sends
from models import Message, Provider, db
from tests.support.sending import account_of, queue_emails, send_in_process, statuses
from tests.support.smtp import SmtpServer

# The providers these tests add listen on loopback: the operator allows private targets.
pytestmark = pytest.mark.usefixtures("private_providers_allowed")

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)


def limited_provider(account_id: int, port: int, per_second: float) -> int:
    with db.session_scope() as s:
        p = Provider(account_id=account_id, name="limited", kind="smtp", priority=1, max_per_second=per_second,
                     config={"host": "127.0.0.1", "port": port, "timeout": 5})
        s.add(p)
        s.flush()
        return p.id



def test_workers_racing_for_slots_each_get_their_own():
    from tests.support import factories

    pid = limited_provider(factories.account(), 2525, 100.0)
    runs: list[datetime] = []
    lock = threading.Lock()

    def book() -> None:
        for _ in range(25):
            with db.session_scope() as s:
                start = reserve_sends(s, pid, 5, 100.0, T0, max_wait=3600)
            with lock:
                runs.append(start)

    threads = [threading.Thread(target=book) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 100 runs of 5 slots at 100/s: back to back, none overlapping, 5 s in all.
    assert sorted(runs) == [T0 + timedelta(seconds=0.05 * i) for i in range(100)]
    with db.session_scope() as s:
        assert s.get(Provider, pid).rate_tat == T0 + timedelta(seconds=5)


def test_two_batches_racing_through_a_limited_provider_keep_to_its_rate():
    ids = queue_emails(30)
    with SmtpServer() as server:
        limited_provider(account_of(ids), server.port, 10.0)
        counts: list[dict[str, int]] = []
        halves = [ids[::2], ids[1::2]]
        started = time.monotonic()
        threads = [threading.Thread(target=lambda part=part: counts.append(send_in_process(part))) for part in halves]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        assert len(server.handler.received) == 30
    assert statuses() == {"sent": 30}
    # 30 sends at 10/s cannot finish in less than 2.9 s however fast the machine
    # (a lower bound only: a slow machine takes longer, never shorter).
    assert elapsed >= 2.9


def test_a_provider_booked_beyond_the_wait_holds_messages_without_using_attempts():
    ids = queue_emails(3)
    with SmtpServer() as server:
        pid = limited_provider(account_of(ids), server.port, 1.0)
        with db.session_scope() as s:
            s.get(Provider, pid).rate_tat = datetime.now(timezone.utc) + timedelta(minutes=5)
        assert send_in_process(ids) == {"held": 3}
        assert server.handler.received == []
    with db.session_scope() as s:
        messages = list(s.scalars(select(Message)))
    assert {(m.status, m.attempts) for m in messages} == {("deferred", 0)}
    assert all("send-rate limit" in m.error for m in messages)


def test_a_limit_that_cannot_be_checked_holds_its_message_and_the_batch_goes_on(monkeypatch):
    # The rate booking's transaction fails once (a database blip): that message is
    # held untried, at no cost in attempts, and the rest of the batch is sent.
    ids = queue_emails(3)
    book = delivery.batch.reserve_sends_now
    failures = iter([RuntimeError("connection reset while booking")])

    def flaky(*args: object, **kwargs: object) -> datetime:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return book(*args, **kwargs)

    monkeypatch.setattr(delivery.batch, "reserve_sends_now", flaky)
    with SmtpServer() as server:
        limited_provider(account_of(ids), server.port, 1000.0)
        assert send_in_process(ids) == {"held": 1, "sent": 2}
        assert len(server.handler.received) == 2
    with db.session_scope() as s:
        held = [m for m in s.scalars(select(Message)) if m.status == "deferred"]
    assert [(m.attempts, "could not be checked" in m.error) for m in held] == [(0, True)]
