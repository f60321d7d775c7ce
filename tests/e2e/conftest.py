"""The end-to-end suite starts real platform processes, which commit on their own
connections: tables are truncated before each test."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import RUN_ID, TEST_ENV
from tests.support.brokers import rabbitmq_unavailable, rabbitmq_vhost
from tests.support.db_fixtures import truncated


@pytest.fixture(autouse=True)
def clean_tables(database: str) -> Iterator[None]:
    yield from truncated()


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """This run's own RabbitMQ vhost (deleted at the end), or a skip saying why there is none."""
    reason = rabbitmq_unavailable()
    if reason:
        pytest.skip(reason)
    yield from rabbitmq_vhost(f"eseq-test-{RUN_ID}")


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """The broker URL a crash or recovery test's processes use: each such test runs on
    both brokers (the other e2e tests stay on this run's Redis, to keep the suite short)."""
    if request.param == "redis":
        return TEST_ENV["CELERY_BROKER_URL"]
    return str(request.getfixturevalue("rabbitmq_url"))
