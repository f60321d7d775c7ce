"""DNS rebinding against an account's provider, through the send task's batch: the
provider was saved while its name resolved to a public address (the save-time
check passed), then the name answers loopback, where a server listens. The send
must be refused, the message deferred with the reason, and the loopback server
must see nothing. DNS is stood in for by tests.support.dns; the operator does not
allow private targets here (ESEQ_WEBHOOK_ALLOW_PRIVATE unset)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from delivery.provider_admin import create_provider
from models import Message, Provider, db
from tests.support.dns import rebinding
from tests.support.provider_server import ProviderServer
from tests.support.sending import account_of, queue_emails, send_in_process
from tests.support.smtp import PipeliningHandler, SmtpServer

NAME = "mail.rebind.test"
PUBLIC = "93.184.216.34"


@contextmanager
def smtp_target() -> Iterator[tuple[dict, object]]:
    with SmtpServer(handler=PipeliningHandler()) as server:
        yield {"host": NAME, "port": server.port, "timeout": 5}, lambda: server.handler.greetings


@contextmanager
def sendgrid_target() -> Iterator[tuple[dict, object]]:
    server = ProviderServer()
    server.start()
    try:
        port = int(server.base_url.rsplit(":", 1)[1])
        yield {"api_key": "SG.alice", "base_url": f"http://{NAME}:{port}", "timeout": 5}, lambda: len(server.requests)
    finally:
        server.stop()


@pytest.mark.parametrize("kind, target", [("smtp", smtp_target), ("sendgrid", sendgrid_target)])
def test_a_provider_saved_while_its_name_was_public_is_refused_at_send_once_it_answers_loopback(
        kind, target, monkeypatch):
    ids = queue_emails(3)
    dns = rebinding(monkeypatch, NAME, PUBLIC)
    with target() as (config, contacts):
        with db.session_scope() as s:
            provider_id = create_provider(s, account_of(ids), {
                "name": "rebound", "kind": kind, "priority": 1, "weight": 1, "domains": [], "enabled": True,
                "config": config}, allow_private=False).id
        dns.then("127.0.0.1")

        assert send_in_process(ids) == {"deferred": 3}

        assert contacts() == 0, "nothing reached the loopback server"
    with db.session_scope() as s:
        errors = s.scalars(select(Message.error).where(Message.id.in_(ids))).all()
        provider = s.get(Provider, provider_id)
        assert all(f"refused to connect to {NAME}" in e and "non-public" in e for e in errors), errors
        assert "non-public" in provider.last_error and provider.consecutive_failures >= 1
