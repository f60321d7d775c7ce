"""The console suite runs in process: each test's writes are rolled back at its end
rather than truncated, except where a test commits for real (see
tests/support/db_fixtures.py)."""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.db_fixtures import rolled_back_or_truncated


@pytest.fixture(autouse=True)
def clean_tables(database: str, request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts from empty tables and leaves nothing behind: rolled back,
    or truncated for a test marked ``committing`` or running a worker."""
    yield from rolled_back_or_truncated(request)


_addresses = itertools.count(1)


@pytest.fixture(autouse=True)
def own_address(client: Any) -> None:
    """Each test's browser on an address of its own: signing in is limited per
    address (10 a minute), and the suite signs in more often than that."""
    n = next(_addresses)
    client.environ_base["REMOTE_ADDR"] = f"127.{n // 65536 % 256}.{n // 256 % 256}.{n % 256 or 1}"
