"""Test fixtures: a fresh PostgreSQL database and Redis key prefix per test run.

The environment is set before anything imports ``settings`` (Celery reads it at
import), so every test, worker thread and subprocess talks to this run's database
and queues, and several runs on one machine never see each other's data.
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

from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from models import Base, db  # noqa: E402
from tests.support.database import fresh_database  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def database() -> Iterator[str]:
    """This run's PostgreSQL database, built once with ``alembic upgrade head``."""
    with fresh_database(TEST_DB, PG_ADMIN_URL) as url:
        db.configure(url, (TEST_ENV["ESEQ_SECRETS_KEYS"],))
        try:
            yield url
        finally:
            db.get_engine().dispose()


def _truncate_all() -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.get_engine().begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(autouse=True)
def clean_tables(database: str) -> Iterator[None]:
    """Each test starts from empty tables. Truncation rather than a rolled-back
    transaction, because workers and subprocesses commit on their own connections."""
    _truncate_all()
    yield


@pytest.fixture
def session() -> Iterator[Session]:
    s = db.new_session()
    try:
        yield s
    finally:
        s.rollback()
        s.close()


@pytest.fixture(scope="session")
def settings() -> Any:
    from settings import load_settings

    return load_settings()


@pytest.fixture
def private_providers_allowed() -> Iterator[None]:
    """Let accounts' providers reach loopback, where the tests run their servers:
    ESEQ_WEBHOOK_ALLOW_PRIVATE through the environment, as an operator would, for the
    send path in this process (the API's app keeps its session settings)."""
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


@pytest.fixture(scope="session")
def app(settings: Any) -> Any:
    from web.app import create_app

    application = create_app(settings)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


class Tenant:
    """A persona with an account: ``alice.headers`` authenticate as her."""

    def __init__(self, name: str, account_id: int, api_key: str) -> None:
        self.name = name
        self.account_id = account_id
        self.api_key = api_key
        self.headers = {"X-API-Key": api_key}


def make_tenant(client: Any, name: str) -> Tenant:
    response = client.post(
        "/api/v1/accounts",
        json={"name": name, "from_email": f"{name.lower()}@example.com", "from_name": name},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return Tenant(name, body["id"], body["api_key"])


@pytest.fixture
def alice(client: Any) -> Tenant:
    return make_tenant(client, "Alice")


@pytest.fixture
def bob(client: Any) -> Tenant:
    return make_tenant(client, "Bob")


@pytest.fixture
def celery_app(database: str) -> Any:
    from tasks.app import app as celery_application

    return celery_application


@pytest.fixture
def worker(celery_app: Any) -> Iterator[Any]:
    """A real Celery worker (threads) consuming every queue of this run's Redis prefix."""
    from celery.contrib.testing.worker import start_worker

    import celeryconfig

    with start_worker(
        celery_app, pool="threads", concurrency=4, perform_ping_check=False,
        loglevel="WARNING", queues=list(celeryconfig.QUEUES), shutdown_timeout=30,
    ) as controller:
        yield controller
