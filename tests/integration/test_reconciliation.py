"""A worker that dies after the provider took a message but before our row says so.

Simulated exactly there: the provider stand-in answers 202, then recording the
outcome raises, as a killed worker would never record it. The row stays
``sending``; when its lease runs out the sweep marks it in doubt. Where the
provider reports events back (its webhook key is configured), the message waits
for them: SendGrid's signed "processed" event carrying our key reconciles the row
to ``sent`` and it is never sent again. With no event by the end of the grace it is
resent once (the documented duplicate, recognisable by the same key); over plain
SMTP, which reports nothing, it is resent at once. An answer lost after the whole
request went out puts a message in the same doubt with no crash at all.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

import delivery.batch
from delivery.outbox import claim_for_dispatch
from inbound.store import process_events
from inbound.tokens import account_token
from models import Event, InboundEvent, Message, Provider, db
from models.base import utcnow
from tests.support.provider_server import ProviderServer
from tests.support.provider_signing import SG_PUBLIC, sendgrid_headers
from tests.support.sending import queue_emails, send_in_process
from tests.support.smtp import SmtpServer

# The providers these tests add listen on loopback: the operator allows private targets.
pytestmark = pytest.mark.usefixtures("private_providers_allowed")

LEASE = timedelta(seconds=300)  # ESEQ_LEASE_SECONDS' default, which the test run keeps
GRACE = timedelta(seconds=600)  # ESEQ_RECONCILE_SECONDS' default


@pytest.fixture
def sendgrid() -> Iterator[ProviderServer]:
    server = ProviderServer()
    server.start()
    server.answer(202, "", {"X-Message-Id": "sg-accepted-1"})
    yield server
    server.stop()


def crash_after_the_provider_accepts(monkeypatch: pytest.MonkeyPatch, ids: list[int], at: datetime) -> None:
    def died(*_: object) -> dict[str, int]:
        raise RuntimeError("worker killed before recording")

    monkeypatch.setattr(delivery.batch, "record", died)
    with pytest.raises(RuntimeError):
        send_in_process(ids, at=at)
    monkeypatch.undo()


def add(account_id: int, **provider: object) -> None:
    with db.session_scope() as s:
        s.add(Provider(account_id=account_id, priority=1, **provider))


def message(message_id: int) -> Message:
    with db.session_scope() as s:
        return s.get(Message, message_id)


def in_doubt_after_the_lease(message_id: int, start: datetime) -> datetime:
    swept = start + LEASE + timedelta(seconds=1)
    with db.session_scope() as s:
        assert claim_for_dispatch(s, swept, 100) == [message_id]
    assert message(message_id).in_doubt_since == swept
    return swept


def sendgrid_account(server: ProviderServer) -> tuple[int, int]:
    [message_id] = queue_emails(1)
    account_id = message(message_id).account_id
    add(account_id, name="sg", kind="sendgrid", config={
        "api_key": "SG.key", "base_url": server.base_url, "timeout": 5, "webhook_public_key": SG_PUBLIC})
    return message_id, account_id


def test_a_provider_event_reconciles_the_row_and_it_is_never_sent_again(client, settings, sendgrid, monkeypatch):
    message_id, account_id = sendgrid_account(sendgrid)
    start = utcnow()
    crash_after_the_provider_accepts(monkeypatch, [message_id], start)
    assert len(sendgrid.requests) == 1 and message(message_id).status == "sending"
    swept = in_doubt_after_the_lease(message_id, start)

    assert send_in_process([message_id], at=swept) == {"held": 1}
    assert len(sendgrid.requests) == 1, "held for the provider's events, not resent"

    key = json.loads(sendgrid.requests[0].body)["custom_args"]["eseq_message"]
    body = json.dumps([{"email": "user0@example.test", "timestamp": int(swept.timestamp()), "event": "processed",
                        "sg_event_id": "cHJvY2Vzc2VkLTEyMzQ1", "sg_message_id": "sg-accepted-1.filter0001.1.0",
                        "smtp-id": "<sg-accepted-1@ismtpd-1>", "eseq_message": key}]).encode()
    answer = client.post(f"/webhooks/sendgrid/{account_token(settings.secret_key, account_id)}", data=body,
                         headers=sendgrid_headers(body))
    assert answer.status_code == 200
    with db.session_scope() as s:
        pending = list(s.scalars(select(InboundEvent.id)))
        assert process_events(s, pending, swept) == {"processed": 1}

    settled = message(message_id)
    assert (settled.status, settled.provider, settled.provider_message_id) == ("sent", "sg", "sg-accepted-1")
    assert settled.in_doubt_since is None
    with db.session_scope() as s:
        [sent] = s.scalars(select(Event).where(Event.name == "sent"))
        assert sent.properties == {"reconciled_from": "sg"}
    assert send_in_process([message_id], at=swept + GRACE + timedelta(minutes=1)) == {}
    assert len(sendgrid.requests) == 1


def test_without_an_event_it_is_resent_once_after_the_grace_with_the_same_key(sendgrid, monkeypatch):
    message_id, _ = sendgrid_account(sendgrid)
    start = utcnow()
    crash_after_the_provider_accepts(monkeypatch, [message_id], start)
    swept = in_doubt_after_the_lease(message_id, start)
    assert send_in_process([message_id], at=swept + GRACE - timedelta(seconds=1)) == {"held": 1}
    after = swept + GRACE + timedelta(seconds=1)
    with db.session_scope() as s:
        assert claim_for_dispatch(s, after, 100) == [message_id]
    assert send_in_process([message_id], at=after) == {"sent": 1}
    keys = [json.loads(r.body)["custom_args"]["eseq_message"] for r in sendgrid.requests]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert message(message_id).attempts == 2  # the lost try and the resend; the hold cost none


def test_over_plain_smtp_nothing_reports_back_so_it_is_resent_at_once(monkeypatch):
    [message_id] = queue_emails(1)
    with SmtpServer() as server:
        add(message(message_id).account_id, name="relay", kind="smtp",
            config={"host": "127.0.0.1", "port": server.port, "timeout": 5})
        start = utcnow()
        crash_after_the_provider_accepts(monkeypatch, [message_id], start)
        swept = in_doubt_after_the_lease(message_id, start)
        assert send_in_process([message_id], at=swept) == {"sent": 1}
        assert len(server.handler.received) == 2


def test_an_answer_lost_after_the_request_is_the_same_doubt_without_a_crash(sendgrid):
    # SendGrid answers after our timeout: it may have taken the message, so it is
    # neither failed over to the SMTP relay nor resent at its retry, but held for
    # SendGrid's events like a message whose worker died.
    [message_id] = queue_emails(1)
    account_id = message(message_id).account_id
    add(account_id, name="sg", kind="sendgrid", config={
        "api_key": "SG.key", "base_url": sendgrid.base_url, "timeout": 0.3, "webhook_public_key": SG_PUBLIC})
    sendgrid.answer(202, "", {"X-Message-Id": "sg-late-1"}, delay=1.0)
    with SmtpServer() as relay:
        with db.session_scope() as s:
            s.add(Provider(account_id=account_id, name="relay", kind="smtp", priority=2,
                           config={"host": "127.0.0.1", "port": relay.port, "timeout": 5}))
        start = utcnow()
        assert send_in_process([message_id], at=start) == {"deferred": 1}
        assert relay.handler.received == [], "not failed over: SendGrid may have delivered it"
        lost = message(message_id)
        assert lost.in_doubt_since == start and "after the whole request was sent" in lost.error
        assert send_in_process([message_id], at=lost.retry_at) == {"held": 1}
        assert len(sendgrid.requests) == 1 and relay.handler.received == []
