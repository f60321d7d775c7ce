"""Fixtures shared by the integration tests. Workers, threads and subprocesses
commit on connections of their own here: tables are truncated before each test."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.db_fixtures import truncated
from tests.support.sending import forget_smtp, use_smtp
from tests.support.smtp import SmtpServer


@pytest.fixture(autouse=True)
def clean_tables(database: str) -> Iterator[None]:
    yield from truncated()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback, configured as the platform's default provider."""
    with SmtpServer() as server:
        use_smtp(server.port)
        yield server
    forget_smtp()
