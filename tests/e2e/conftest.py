"""The end-to-end suite starts real platform processes, which commit on their own
connections: tables are truncated before each test."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.db_fixtures import truncated


@pytest.fixture(autouse=True)
def clean_tables(database: str) -> Iterator[None]:
    yield from truncated()
