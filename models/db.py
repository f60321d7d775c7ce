"""Engine and session lifecycle, shared by web, workers, beat and scripts.

The session's lifecycle lives here, outside the functions that use it: domain code
takes a ``Session`` and never commits; web requests and tasks open one with
``session_scope()`` and commit at the end.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from models import sealed

_engine: Engine | None = None
_factory: sessionmaker[Session] | None = None
_url: str | None = None
_autocommit: Engine | None = None
_options: dict[str, Any] = {}
# PostgreSQL's pool when none is asked for (settings.db_pool_size, db_max_overflow).
DEFAULT_POOL: dict[str, Any] = {"pool_size": 10, "max_overflow": 20}


def normalize_url(url: str) -> str:
    """Pin PostgreSQL URLs to psycopg2, the driver the platform ships (SQLAlchemy 2.1
    otherwise picks psycopg 3 for a bare ``postgresql://``)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the pool settings each backend needs; ``pool_size`` and
    ``max_overflow`` (settings.db_pool_size, db_max_overflow) apply to PostgreSQL only."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        # One writer at a time whatever the pool: SQLAlchemy's own pool for SQLite files.
        kwargs.pop("pool_size", None)
        kwargs.pop("max_overflow", None)
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets the web process read while a worker writes; foreign keys are
            # off by default in SQLite and the schema relies on cascades.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # The driver's own BEGIN (deferred, sent before the first write) is
            # replaced by ours below; it also leaves SAVEPOINTs to SQLAlchemy.
            dbapi_conn.isolation_level = None

        if kwargs.get("isolation_level") != "AUTOCOMMIT":
            @event.listens_for(engine, "begin")
            def _begin_immediate(conn: Any) -> None:
                # A deferred transaction that read before another process
                # committed cannot then write: SQLite fails it at once with
                # "database is locked", whatever the busy timeout. Taking the write
                # lock at BEGIN makes such writers wait their turn instead.
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if "poolclass" not in kwargs:
        kwargs = {**DEFAULT_POOL, **kwargs}
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def configure(url: str, secrets_keys: tuple[str, ...] | None = None, **kwargs: Any) -> Engine:
    """Create (or replace) the process-wide engine and session factory; with
    ``secrets_keys`` (settings.secrets_keys), also the keys sealing secret columns
    (models.sealed), which are otherwise left as they were. The same URL with no
    engine options, or the same ones as before, keeps the engine (web and tasks
    both configure it in one process)."""
    global _engine, _factory, _url, _autocommit, _options
    if secrets_keys is not None:
        sealed.use_keys(secrets_keys)
    if _engine is not None and url == _url and (not kwargs or {**DEFAULT_POOL, **kwargs} == _options):
        return _engine
    if _engine is not None:
        _engine.dispose()
    if _autocommit is not None:
        _autocommit.dispose()
        _autocommit = None
    _engine = make_engine(url, **kwargs)
    _options = {**DEFAULT_POOL, **kwargs}
    _factory = sessionmaker(bind=_engine, expire_on_commit=False)
    _url = url
    return _engine


def get_engine() -> Engine:
    if _engine is None:
        raise RuntimeError("models.db.configure() has not been called")
    return _engine


def new_session() -> Session:
    if _factory is None:
        raise RuntimeError("models.db.configure() has not been called")
    return _factory()


def after_fork() -> None:
    """Drop pooled connections inherited from a parent process without closing them
    (the parent still owns those sockets), as SQLAlchemy's docs advise."""
    for engine in (_engine, _autocommit):
        if engine is not None:
            engine.dispose(close=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def autocommit_scope() -> Iterator[Session]:
    """A session whose every statement commits on its own, for writes that are
    each one statement and safe to repeat: no BEGIN and no COMMIT round trips,
    and no liveness ping when a connection is taken from the pool (a dropped
    connection fails the statement instead, and the caller tries again).

    Made for the send worker's group commit (delivery.batch.record_outcomes):
    its writer thread waits for the GIL after every round trip, behind dozens of
    send threads, so each round trip it skips shortens every group's write.
    Connections of their own (a second pool), since the ping is a pool setting."""
    global _autocommit
    if _url is None:
        raise RuntimeError("models.db.configure() has not been called")
    if _autocommit is None:
        _autocommit = make_engine(_url, pool_pre_ping=False, isolation_level="AUTOCOMMIT", pool_size=2, max_overflow=8)
    session = Session(bind=_autocommit)
    try:
        yield session
    finally:
        session.close()


@contextmanager
def raw_cursor(session: Session) -> Iterator[Any]:
    """A DB-API cursor on the session's connection, inside its transaction, closed
    after: for what SQLAlchemy does not wrap (psycopg2's COPY, several statements in
    one round trip)."""
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    finally:
        cursor.close()
