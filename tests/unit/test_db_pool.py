"""Each process's PostgreSQL pool takes its size from settings (docs/operations.md
sizes it against PgBouncer), and SQLite ignores it. No connection is opened."""
from __future__ import annotations

from pathlib import Path

from models.db import make_engine


def test_a_postgresql_engine_pools_as_many_connections_as_asked():
    engine = make_engine("postgresql://postgres@127.0.0.1:1/none", pool_size=3, max_overflow=0)
    assert (engine.pool.size(), engine.pool._max_overflow) == (3, 0)  # type: ignore[attr-defined]
    default = make_engine("postgresql://postgres@127.0.0.1:1/none")
    assert (default.pool.size(), default.pool._max_overflow) == (10, 20)  # type: ignore[attr-defined]


def test_sqlite_keeps_its_own_pool_whatever_the_pool_settings(tmp_path: Path):
    # SQLAlchemy refuses max_overflow for an in-memory database's pool: the settings
    # every process passes must not stop the embedded default from starting.
    for url in ("sqlite://", f"sqlite:///{tmp_path / 'x.sqlite'}"):
        assert make_engine(url, pool_size=3, max_overflow=0).dialect.name == "sqlite"
