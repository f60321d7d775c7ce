"""Failover between real SMTP servers on loopback, with the circuit breaker kept in
PostgreSQL: primary down -> secondary, each message once; all down -> deferred and
sent once one recovers; the primary gets traffic back after its cool-down."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from delivery.routing import CIRCUIT_COOLDOWN, CIRCUIT_THRESHOLD
from models import Event, Message, Provider, Subscriber, Suppression, db
from models.base import utcnow
from tests.support.sending import account_of, queue_emails, send_in_process, statuses
from tests.support.smtp import SilentAfterData, SmtpServer, free_port

# The providers these tests add listen on loopback: the operator allows private targets.
pytestmark = pytest.mark.usefixtures("private_providers_allowed")


def add_provider(account_id: int, name: str, port: int, priority: int, timeout: float = 5) -> int:
    with db.session_scope() as s:
        p = Provider(account_id=account_id, name=name, kind="smtp", priority=priority,
                     config={"host": "127.0.0.1", "port": port, "timeout": timeout})
        s.add(p)
        s.flush()
        return p.id


def provider(pid: int) -> Provider:
    with db.session_scope() as s:
        return s.get(Provider, pid)



def test_with_the_primary_down_every_message_goes_out_once_through_the_secondary():
    ids = queue_emails(12)
    acct = account_of(ids)
    dead_port = free_port()
    with SmtpServer() as secondary:
        primary_id = add_provider(acct, "primary", dead_port, 1)
        secondary_id = add_provider(acct, "secondary", secondary.port, 2)
        assert send_in_process(ids) == {"sent": 12}
        assert sorted(r for got in secondary.handler.received for r in got.recipients) == \
            sorted(f"user{i}@example.test" for i in range(12))
    with db.session_scope() as s:
        assert set(s.scalars(select(Message.provider))) == {"secondary"}
    primary = provider(primary_id)
    assert primary.circuit_state == "open" and primary.consecutive_failures >= CIRCUIT_THRESHOLD
    assert "connect" in primary.last_error
    assert provider(secondary_id).last_success_at is not None


def test_traffic_returns_to_the_primary_after_its_circuit_half_opens():
    ids = queue_emails(10)
    acct = account_of(ids)
    port = free_port()
    with SmtpServer() as secondary:
        primary_id = add_provider(acct, "primary", port, 1)
        add_provider(acct, "secondary", secondary.port, 2)
        start = utcnow()
        assert send_in_process(ids[:6], at=start) == {"sent": 6}
        assert provider(primary_id).circuit_state == "open"
        with SmtpServer(port) as primary:  # the primary recovers
            assert send_in_process(ids[6:8], at=start + timedelta(seconds=5)) == {"sent": 2}
            assert primary.handler.received == [], "still inside the cool-down"
            assert send_in_process(ids[8:], at=start + CIRCUIT_COOLDOWN + timedelta(seconds=1)) == {"sent": 2}
            assert len(primary.handler.received) == 2
    assert provider(primary_id).circuit_state == "closed"


def test_with_every_provider_down_messages_wait_and_all_go_out_once_one_recovers():
    ids = queue_emails(8)
    acct = account_of(ids)
    port_a, port_b = free_port(), free_port()
    add_provider(acct, "a", port_a, 1)
    add_provider(acct, "b", port_b, 2)
    start = utcnow()
    # Five tries open both providers' circuits within the batch; the other three
    # are held without a try, so waiting costs them none of their attempts.
    assert send_in_process(ids, at=start) == {"deferred": 5, "held": 3}
    with db.session_scope() as s:
        deferred = list(s.scalars(select(Message).order_by(Message.id)))
    assert all(m.status == "deferred" and m.retry_at > start for m in deferred)
    assert "a:" in deferred[0].error and "b:" in deferred[0].error  # both were tried
    assert [m.attempts for m in deferred] == [1] * 5 + [0] * 3
    assert deferred[-1].error.startswith("no provider available")
    with SmtpServer(port_b) as b:
        later = start + timedelta(hours=1)
        assert send_in_process(ids, at=later) == {"sent": 8}
        assert send_in_process(ids, at=later + timedelta(hours=1)) == {}
        assert len(b.handler.received) == 8
    assert statuses() == {"sent": 8}


def test_a_message_whose_answer_was_lost_is_deferred_in_doubt_not_failed_over():
    ids = queue_emails(1)
    acct = account_of(ids)
    start = utcnow()
    with SmtpServer() as secondary:
        with SilentAfterData() as primary:
            add_provider(acct, "primary", primary.port, 1, timeout=0.5)
            add_provider(acct, "secondary", secondary.port, 2)
            assert send_in_process(ids, at=start) == {"deferred": 1}
            assert primary.taken == 1
        assert secondary.handler.received == [], "the primary may have delivered it: not sent twice at once"
        with db.session_scope() as s:
            (message,) = s.scalars(select(Message))
            assert (message.in_doubt_since, message.provider) == (start, "primary")
            assert "may have been delivered" in message.error and message.retry_at > start
        # Plain SMTP reports nothing back to reconcile it with, so its retry sends it
        # (the primary is gone now: through the secondary).
        assert send_in_process(ids, at=start + timedelta(hours=1)) == {"sent": 1}
        assert len(secondary.handler.received) == 1
    assert statuses() == {"sent": 1}


@pytest.mark.parametrize("reply, outcome, suppressed", [
    ("550 5.1.1 No such user", {"failed": 1}, ["bounced"]),  # the address: no other provider would take it
    ("554 5.7.1 Client host blocked using zen.spamhaus.org", {"sent": 1}, []),  # our IP, not the address
], ids=["bad-mailbox-not-failed-over", "policy-block-failed-over"])
def test_a_refusal_at_the_first_provider_fails_over_only_when_it_is_not_about_the_address(reply, outcome, suppressed):
    ids = queue_emails(1)
    acct = account_of(ids)
    with SmtpServer() as first, SmtpServer() as second:
        first.handler.refuse["user0@example.test"] = reply
        add_provider(acct, "first", first.port, 1)
        add_provider(acct, "second", second.port, 2)
        assert send_in_process(ids) == outcome
        assert len(second.handler.received) == outcome.get("sent", 0)
    with db.session_scope() as s:
        assert list(s.scalars(select(Suppression.reason))) == suppressed


def test_a_refused_message_fails_but_its_address_stays_subscribed():
    ids = queue_emails(1)
    acct = account_of(ids)
    with SmtpServer() as server:
        server.handler.refuse_content["user0@example.test"] = "552 5.3.4 Message size exceeds fixed limit"
        add_provider(acct, "only", server.port, 1)
        assert send_in_process(ids) == {"failed": 1}
    with db.session_scope() as s:
        assert "5.3.4" in s.scalar(select(Message.error))
        assert s.scalar(select(Subscriber.status)) == "active"
        assert s.scalars(select(Suppression)).all() == []
        assert list(s.scalars(select(Event.name).where(Event.message_id == ids[0], Event.name != "queued"))) == [
            "rejected"]


def test_a_provider_answering_429_is_not_called_before_retry_after_and_nothing_fails():
    from tests.support.provider_server import ProviderServer

    ids = queue_emails(3)
    acct = account_of(ids)
    server = ProviderServer()
    server.start()
    try:
        with db.session_scope() as s:
            p = Provider(account_id=acct, name="sg", kind="sendgrid", priority=1,
                         config={"api_key": "SG.key", "base_url": server.base_url, "timeout": 5})
            s.add(p)
            s.flush()
            pid = p.id
        server.answer(429, '{"errors":[{"message":"too many requests"}]}', {"Retry-After": "120"})
        start = utcnow()
        # The 429's message is held like the two after it (held untried): being
        # throttled is not the message's failure, so none uses up an attempt.
        assert send_in_process(ids, at=start) == {"held": 3}
        assert len(server.requests) == 1, "paused for the rest of the batch after the 429"
        sg = provider(pid)
        assert sg.paused_until == start + timedelta(seconds=120)
        assert (sg.consecutive_failures, sg.circuit_state) == (0, "closed"), "a throttle is not a failure"
        with db.session_scope() as s:
            held = list(s.scalars(select(Message)))
            assert all(m.retry_at >= start + timedelta(seconds=60) and m.attempts == 0 for m in held)
        server.answer(202, "", {"X-Message-Id": "sg-1"})
        assert send_in_process(ids, at=start + timedelta(seconds=119)) == {}
        assert len(server.requests) == 1, "not called before Retry-After"
        assert send_in_process(ids, at=start + timedelta(hours=1)) == {"sent": 3}
        assert statuses() == {"sent": 3}
    finally:
        server.stop()
