"""Dialect-aware INSERT ... ON CONFLICT for the two backends the platform runs on.

Both PostgreSQL and SQLite speak ``ON CONFLICT``; SQLAlchemy exposes it through each
dialect's own ``insert``, so this picks the right one for the session's bind.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Table

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def _insert_for(name: str) -> Any:
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"no ON CONFLICT support for {name}")


def dialect_insert(session: Session, model: Any) -> Any:
    """``insert(model)`` from the session's dialect, so ``.on_conflict_do_nothing()`` works."""
    return _insert_for(session.get_bind().dialect.name)(model)


def insert_ignoring_conflicts(session: Session, model: Any, rows: list[dict[str, Any]], returning: Any) -> list[Any]:
    """Insert ``rows``; rows hitting a unique constraint are skipped. Returns ``returning``
    of the rows actually inserted."""
    if not rows:
        return []
    statement = dialect_insert(session, model).values(rows).on_conflict_do_nothing().returning(returning)
    return list(session.scalars(statement))


@lru_cache(maxsize=32)
def _ignoring_conflicts(dialect: str, table: Table) -> Any:
    return _insert_for(dialect)(table).on_conflict_do_nothing()


def add_rows_ignoring_conflicts(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """``insert_ignoring_conflicts`` for a hot path that needs nothing back: one
    statement built once per table and run as an executemany, where building and
    compiling a fresh multi-row ORM insert each time cost milliseconds."""
    if rows:
        session.execute(_ignoring_conflicts(session.get_bind().dialect.name, table), rows)
