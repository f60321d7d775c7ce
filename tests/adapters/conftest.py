"""A stand-in provider: an HTTP server on 127.0.0.1 (free port, own thread) that
records each request exactly as it arrived and answers with whatever the test
told it to, plus the message every adapter test sends."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime, timezone
from email.message import EmailMessage

import pytest

from delivery.mime import Envelope, build_message
from tests.support.provider_server import ProviderServer
from tests.support.smtp import free_port


@pytest.fixture
def provider() -> Iterator[ProviderServer]:
    server = ProviderServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nothing_listening() -> str:
    """A base URL whose port refuses connections."""
    port = free_port()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return f"http://127.0.0.1:{port}"


KEY = "42:7:a"


@pytest.fixture
def message() -> EmailMessage:
    """What delivery.sender hands a transport: Alice's newsletter to Bob."""
    return build_message(Envelope(
        from_email="alice@news.example", from_name="Alice Example", to_email="bob@example.org",
        subject="Hello Bob", html="<p>Hi Bob</p>", text="Hi Bob", unsubscribe_url="https://t.example/u/1",
        unsubscribe_mailto="mailto:alice@news.example?subject=unsubscribe", message_key=KEY,
    ), datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc))
