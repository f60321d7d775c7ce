"""The environment of a test run: its own PostgreSQL database name and Redis key prefix.

The environment is set here, before anything imports ``settings`` (Celery reads it
at import), so every test, worker thread and subprocess talks to this run's
database and queues, and several runs on one machine never see each other's data.

Nothing here connects to anything: ``tests/unit`` runs with PostgreSQL and Redis
stopped. The database itself, clean tables, the app, tenants and the worker are
in tests/support/db_fixtures.py, taken by the suites that need them.
"""
from __future__ import annotations

import base64
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = secrets.token_hex(4)
PG_ADMIN_URL = os.environ.get("ESEQ_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_DB = f"eseq_test_{RUN_ID}"
TEST_DB_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + TEST_DB
REDIS_URL = os.environ.get("ESEQ_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ADMIN_TOKEN = "test-admin-token-" + secrets.token_hex(16)  # settings want 32 characters or more
METRICS_TOKEN = "test-metrics-token-" + secrets.token_hex(16)

TEST_ENV = {
    "DATABASE_URL": TEST_DB_URL,
    "REDIS_URL": REDIS_URL,
    "CELERY_BROKER_URL": REDIS_URL,
    "CELERY_RESULT_BACKEND": REDIS_URL,
    "ESEQ_BROKER_PREFIX": f"eseq-test-{RUN_ID}:",
    "SECRET_KEY": "test-secret-key-" + RUN_ID + "-0123456789",
    "ESEQ_ADMIN_TOKEN": ADMIN_TOKEN,
    "ESEQ_METRICS_TOKEN": METRICS_TOKEN,
    "ESEQ_RATE_LIMIT": "100000 per minute",
    "ESEQ_LOG_LEVEL": "WARNING",
    "PUBLIC_BASE_URL": "http://localhost:8000",
    # Every test runs with secrets sealed at rest, as a production deployment should.
    "ESEQ_SECRETS_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
}
os.environ.update(TEST_ENV)
os.environ.pop("SENTRY_DSN", None)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# The database, the app, tenants and the worker: one registration for the whole run
# (a session-scoped fixture imported into several conftests would be several).
pytest_plugins = ("tests.support.db_fixtures",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``make test`` runs two workers), the tests that start real
    platform processes all go to one worker, one after another, while the in-process
    tests fill the other: two of them at once on a 2-core machine would starve each
    other's processes, and each would measure the other's load."""
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.xdist_group("e2e"))


@pytest.fixture(scope="session")
def settings() -> Any:
    from settings import load_settings

    return load_settings()


@pytest.fixture
def private_providers_allowed() -> Iterator[None]:
    """Let accounts' providers and webhook steps reach loopback, where the tests run
    their servers: ESEQ_WEBHOOK_ALLOW_PRIVATE through the environment, as an operator
    would, for this process and its in-thread workers (the API's app keeps its
    session settings)."""
    from settings import get_settings

    previous = os.environ.get("ESEQ_WEBHOOK_ALLOW_PRIVATE")
    os.environ["ESEQ_WEBHOOK_ALLOW_PRIVATE"] = "true"
    get_settings.cache_clear()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("ESEQ_WEBHOOK_ALLOW_PRIVATE", None)
        else:
            os.environ["ESEQ_WEBHOOK_ALLOW_PRIVATE"] = previous
        get_settings.cache_clear()


class Tenant:
    """A persona with an account: ``alice.headers`` authenticate as her."""

    def __init__(self, name: str, account_id: int, api_key: str) -> None:
        self.name = name
        self.account_id = account_id
        self.api_key = api_key
        self.headers = {"X-API-Key": api_key}
