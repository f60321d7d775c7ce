"""The console suite runs in process: each test's writes are rolled back at its end
rather than truncated, except where a test commits for real (see
tests/support/db_fixtures.py)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.db_fixtures import rolled_back_or_truncated


@pytest.fixture(autouse=True)
def clean_tables(database: str, request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts from empty tables and leaves nothing behind: rolled back,
    or truncated for a test marked ``committing`` or running a worker."""
    yield from rolled_back_or_truncated(request)
