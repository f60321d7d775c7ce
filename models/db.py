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

_engine: Engine | None = None
_factory: sessionmaker[Session] | None = None
_url: str | None = None


def normalize_url(url: str) -> str:
    """Pin PostgreSQL URLs to psycopg2, the driver the platform ships (SQLAlchemy 2.1
    otherwise picks psycopg 3 for a bare ``postgresql://``)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the pool settings each backend needs."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
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

        return engine
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def configure(url: str, **kwargs: Any) -> Engine:
    """Create (or replace) the process-wide engine and session factory."""
    global _engine, _factory, _url
    if _engine is not None and url == _url and not kwargs:
        return _engine
    if _engine is not None:
        _engine.dispose()
    _engine = make_engine(url, **kwargs)
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
    if _engine is not None:
        _engine.dispose(close=False)


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
