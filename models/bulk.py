"""Dialect-aware bulk writes for the two backends the platform runs on.

Both PostgreSQL and SQLite speak ``ON CONFLICT``; SQLAlchemy exposes it through each
dialect's own ``insert``, so this picks the right one for the session's bind. Hot
paths use statements built once per table (and column set) and run as one
executemany: building and compiling a fresh multi-row statement per call cost
milliseconds of CPU per batch.
"""
from __future__ import annotations

import json
from collections import defaultdict
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Table, TextClause, bindparam, text, update

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


@lru_cache(maxsize=32)
def _ignoring_conflicts_returning(dialect: str, table: Table, column: str) -> Any:
    return _insert_for(dialect)(table).on_conflict_do_nothing().returning(table.c[column])


def insert_rows_returning(session: Session, table: Table, rows: list[dict[str, Any]],
                          returning: str = "id") -> list[Any]:
    """``insert_ignoring_conflicts`` for a hot path: rows (all with the same keys) go
    in as one executemany of a statement built once, which SQLAlchemy's
    "insertmanyvalues" sends as multi-row INSERTs with RETURNING. Returns ``returning``
    of the rows actually inserted (a conflicting row returns nothing)."""
    if not rows:
        return []
    statement = _ignoring_conflicts_returning(session.get_bind().dialect.name, table, returning)
    return list(session.scalars(statement, rows))


# PostgreSQL: one UPDATE per set of changed columns, its rows passed as arrays and
# joined back by id. A psycopg2 executemany of UPDATE is one round trip (and one
# parse and plan) per row, which cost PostgreSQL more CPU than the rest of a batch.
_UNNEST_UPDATE = "UPDATE {table} SET {sets} FROM unnest({arrays}) AS v(id, {names}) WHERE {table}.id = v.id"


@lru_cache(maxsize=64)
def _row_update(dialect: Any, table: Table, columns: tuple[str, ...], also: tuple[str, ...]) -> TextClause | Any:
    if dialect.name != "postgresql":
        values = {c: bindparam(f"v_{c}", type_=table.c[c].type) for c in columns}
        values |= {a: bindparam(f"set_{a}", type_=table.c[a].type) for a in also}
        return update(table).where(table.c.id == bindparam("v_id")).values(values)
    typed = [("id", table.c.id)] + [(c, table.c[c]) for c in columns]
    arrays = ", ".join(f"CAST(:v_{name} AS {column.type.compile(dialect=dialect)}[])" for name, column in typed)
    sets = ", ".join([f"{c} = v.{c}" for c in columns] + [f"{a} = :set_{a}" for a in also])
    return text(_UNNEST_UPDATE.format(table=table.name, sets=sets, arrays=arrays, names=", ".join(columns)))


def _group_by_columns(changes: dict[int, dict[str, Any]]) -> dict[tuple[str, ...], list[tuple[int, dict[str, Any]]]]:
    groups: dict[tuple[str, ...], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for row_id, changed in changes.items():
        if changed:
            groups[tuple(sorted(changed))].append((row_id, changed))
    return groups


def update_rows(session: Session, table: Table, changes: dict[int, dict[str, Any]],
                also: dict[str, Any] | None = None) -> None:
    """Write each row's changed columns (``{id: {column: value}}``), and the same
    ``also`` values to every row written; rows with no changes are left alone, as
    the ORM's flush leaves them. One statement per distinct set of changed columns."""
    also = also or {}
    dialect = session.get_bind().dialect
    for columns, group in _group_by_columns(changes).items():
        statement = _row_update(dialect, table, columns, tuple(sorted(also)))
        if dialect.name == "postgresql":
            session.execute(statement, _as_arrays(table, columns, group, also))
        else:
            session.execute(statement, [{"v_id": row_id, **{f"v_{c}": changed[c] for c in columns},
                                         **{f"set_{a}": v for a, v in also.items()}} for row_id, changed in group])


def _as_arrays(table: Table, columns: tuple[str, ...], group: list[tuple[int, dict[str, Any]]],
               also: dict[str, Any]) -> dict[str, Any]:
    """One list per column for ``unnest``; JSON values go as their text (psycopg2
    cannot adapt a dict), cast back to JSON in SQL."""
    params: dict[str, Any] = {"v_id": [row_id for row_id, _ in group]}
    for c in columns:
        values = [changed[c] for _, changed in group]
        if isinstance(table.c[c].type, JSON):
            values = [json.dumps(v) for v in values]
        params[f"v_{c}"] = values
    params.update({f"set_{a}": v for a, v in also.items()})
    return params
