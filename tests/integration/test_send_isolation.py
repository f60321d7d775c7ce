"""A provider's refusal whose text the database cannot store does not lose the
outcomes recorded with it."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from models import Message, Provider, db
from tests.support.provider_server import ProviderServer
from tests.support.sending import account_of, queue_emails, send_in_process


@pytest.fixture
def sendgrid() -> Iterator[ProviderServer]:
    server = ProviderServer()
    server.start()
    yield server
    server.stop()


def test_a_refusal_quoting_a_nul_byte_is_recorded_escaped_not_lost(sendgrid, private_providers_allowed):
    ids = queue_emails(1)
    with db.session_scope() as s:
        s.add(Provider(account_id=account_of(ids), name="sg", kind="sendgrid", priority=1,
                       config={"api_key": "SG.key", "base_url": sendgrid.base_url, "timeout": 5}))
    sendgrid.answer(400, b'{"errors": [{"field": "to", "message": "bad\\u0000address"}]}')

    counts = send_in_process(ids)

    with db.session_scope() as s:
        row = s.get(Message, ids[0])
    assert row.status != "sending" and counts == {row.status: 1}, "the outcome is recorded"
    assert "bad\\x00address" in row.error and "\x00" not in row.error
