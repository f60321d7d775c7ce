"""Fixtures for the suites that talk to PostgreSQL and Redis (api, integration,
e2e): this run's database, clean tables for each test, the app, its client,
tenants and a real Celery worker.

Registered once for the whole run by the root conftest (``pytest_plugins``), so
the session-scoped database is one database whichever suites run; but nothing
here is autouse: a suite that needs the database says so with an autouse
``clean_tables`` in its own conftest, and ``tests/unit``, which has none, never
connects to anything.

Each test starts from empty tables, by one of two means:

- truncation (``truncated()``): every table emptied before the test, for tests
  whose rows must be committed for real because something else reads them on a
  connection of its own: a worker, a subprocess, a thread, or the very commit,
  claim or lock behaviour under test;
- a transaction rolled back at the end (``rolled_back_or_truncated()``,
  SQLAlchemy's "joining a Session into an external transaction" recipe): every
  session the code makes is bound to one connection inside a transaction that is
  never committed, each ``commit()`` releasing a savepoint instead. tests/api
  does this; a test there that commits for real says so with
  ``@pytest.mark.committing``, or is recognised by asking for the ``worker``.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session, sessionmaker

from models import Base, db
from tests.conftest import ADMIN_TOKEN, PG_ADMIN_URL, TEST_DB, TEST_ENV, Tenant
from tests.support.database import fresh_database

# Fixtures that start something committing on a connection of its own.
COMMITTING_FIXTURES = frozenset({"worker"})


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """This run's PostgreSQL database, built once with ``alembic upgrade head``."""
    with fresh_database(TEST_DB, PG_ADMIN_URL) as url:
        db.configure(url, (TEST_ENV["ESEQ_SECRETS_KEYS"],))
        try:
            yield url
        finally:
            db.get_engine().dispose()


class _State:
    """Whether rows may have been committed since the tables were last emptied."""

    dirty = True  # the migrations may have written rows


def truncate_all() -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.get_engine().begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    _State.dirty = False


def truncated() -> Iterator[None]:
    """For a suite's ``clean_tables``: empty every table before the test."""
    truncate_all()
    _State.dirty = True  # whatever the test commits stays until the next truncation
    yield


_STRAY_THREAD = ("a thread other than the test's used the database: mark the test "
                 "@pytest.mark.committing so that each thread has a connection of its own")


def _rolled_back() -> Iterator[None]:
    if _State.dirty:  # a committing test ran before this one
        truncate_all()
    connection = db.get_engine().connect()
    outer = connection.begin()
    test_thread = threading.get_ident()
    strays: list[str] = []

    @event.listens_for(connection, "before_cursor_execute")
    def _same_thread(*_args: Any) -> None:
        # Another thread would share this connection and its transaction, so a race
        # under test would never happen and could pass for the wrong reason. Failing
        # in that thread alone is not enough (an uncaught error in a thread is only a
        # warning to pytest), so the test is failed again at teardown.
        if threading.get_ident() != test_thread:
            strays.append(threading.current_thread().name)
            pytest.fail(_STRAY_THREAD)

    # db.new_session() (every request, task body and session_scope) makes its
    # sessions from this factory: bound to the connection, each one's commit
    # releases a savepoint of the outer transaction.
    factory = db._factory
    db._factory = sessionmaker(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")
    try:
        yield
    finally:
        db._factory = factory
        outer.rollback()
        connection.close()
    if strays:
        pytest.fail(f"{_STRAY_THREAD} (threads: {', '.join(sorted(set(strays)))})")


def rolled_back_or_truncated(request: pytest.FixtureRequest) -> Iterator[None]:
    """For a suite's ``clean_tables``: roll back, unless the test commits for real."""
    committing = (request.node.get_closest_marker("committing") is not None
                  or not COMMITTING_FIXTURES.isdisjoint(request.fixturenames))
    yield from (truncated() if committing else _rolled_back())


@pytest.fixture
def clean_tables(database: str) -> Iterator[None]:
    """Empty tables; each suite that uses the database overrides this with an
    autouse fixture of its own, choosing truncation or a rollback."""
    yield from truncated()


@pytest.fixture
def session(clean_tables: None) -> Iterator[Session]:
    s = db.new_session()
    try:
        yield s
    finally:
        s.rollback()
        s.close()


@pytest.fixture(scope="session")
def app(settings: Any, database: str) -> Any:
    from web.app import create_app

    application = create_app(settings)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app: Any, clean_tables: None) -> Any:
    return app.test_client()


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
    # Its tasks started this process's heartbeat (tasks.liveness); it stops with the
    # worker, not after the run's database is gone.
    from tasks.liveness import stop_heartbeat

    stop_heartbeat()
