"""Fixtures shared by the integration tests."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.sending import forget_smtp, use_smtp
from tests.support.smtp import SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback, configured as the platform's default provider."""
    with SmtpServer() as server:
        use_smtp(server.port)
        yield server
    forget_smtp()
