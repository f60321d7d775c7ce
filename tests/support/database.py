"""Throwaway PostgreSQL databases, built with the same migrations the Procfile's
release step runs; shared by the test run and the benchmarks."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from models.db import normalize_url

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = os.environ.get("ESEQ_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def url_for(name: str, admin_url: str = ADMIN_URL) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + name


def _admin_exec(sql: str, admin_url: str) -> None:
    engine = create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()


def migrate(url: str, target: str = "head", direction: str = "upgrade") -> None:
    """Run Alembic in a subprocess, exactly as the Procfile's release step does."""
    subprocess.run([sys.executable, "-m", "alembic", direction, target], cwd=ROOT,
                   env={**os.environ, "DATABASE_URL": url}, check=True, capture_output=True)


@contextmanager
def embedded_sqlite(folder: Path, revision: str = "head") -> Iterator[str]:
    """This process's database switched to a SQLite file in ``folder`` migrated to
    ``revision`` (the embedded default), and back to the run's PostgreSQL after."""
    from models import db

    url = f"sqlite:///{folder / 'eseq.sqlite'}"
    migrate(url, revision)
    previous = db._url
    db.configure(url)
    try:
        yield url
    finally:
        db.configure(previous)


@contextmanager
def engine_at(url: str) -> Iterator[Engine]:
    """An engine of its own on ``url`` (the platform's make_engine), disposed after;
    the process's own database is left as it is."""
    from models.db import make_engine

    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def sqlite_engine(folder: Path, revision: str = "head") -> Iterator[Engine]:
    """``engine_at`` a SQLite file in ``folder`` migrated to ``revision`` (the embedded default)."""
    url = f"sqlite:///{folder / 'eseq.sqlite'}"
    migrate(url, revision)
    with engine_at(url) as engine:
        yield engine


@contextmanager
def empty_database(name: str, admin_url: str = ADMIN_URL) -> Iterator[str]:
    """Create database ``name`` with no tables, yield its URL, drop it after."""
    _admin_exec(f'CREATE DATABASE "{name}"', admin_url)
    try:
        yield url_for(name, admin_url)
    finally:
        _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', admin_url)


@contextmanager
def fresh_database(name: str, admin_url: str = ADMIN_URL) -> Iterator[str]:
    """Create database ``name``, migrate it to head, yield its URL, drop it after."""
    with empty_database(name, admin_url) as url:
        migrate(url)
        yield url
