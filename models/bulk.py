"""Dialect-aware bulk writes for the two backends the platform runs on.

Both PostgreSQL and SQLite speak ``ON CONFLICT``; SQLAlchemy exposes it through each
dialect's own ``insert``, so this picks the right one for the session's bind. Hot
paths use statements built once per table (and column set): building and compiling
a fresh multi-row statement per call cost milliseconds of CPU per batch. On
PostgreSQL their rows travel as one JSON document; elsewhere as an executemany.
"""
from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, TextClause, bindparam, text, update

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


# PostgreSQL takes a batch of rows as one JSON document, unpacked in SQL by
# json_to_recordset into typed columns: one short statement text and one parameter.
# A multi-row VALUES is compiled per batch, an executemany of UPDATE is a round trip
# (and a parse and plan) per row, and psycopg2 adapts list parameters at 3-8 us a
# value, where json.dumps of the whole batch costs a few microseconds a row.
_RECORDSET = "json_to_recordset(CAST(:rows AS json)) AS v({typed})"
_JSON_INSERT = "INSERT INTO {table} ({names}) SELECT {names} FROM {recordset} ON CONFLICT DO NOTHING RETURNING {returning}"
# The ``id = ANY`` names the rows to the planner, which cannot see into the JSON: it
# guesses a recordset at 100 rows, and against a table of up to a few hundred
# thousand rows that guess made every write-back a hash join over a full scan.
_JSON_UPDATE = "UPDATE {table} SET {sets} FROM {recordset} WHERE {table}.id = ANY(CAST(:ids AS bigint[])) AND {table}.id = v.id"


def _names(dialect: Any, columns: tuple[str, ...]) -> list[str]:
    return [dialect.identifier_preparer.quote(c) for c in columns]


def _recordset(dialect: Any, table: Table, columns: tuple[str, ...]) -> str:
    typed = ", ".join(f"{n} {table.c[c].type.compile(dialect=dialect)}" for n, c in zip(_names(dialect, columns), columns))
    return _RECORDSET.format(typed=typed)


def _iso(value: Any) -> str:
    """json.dumps calls this only for what JSON has no type for: here, datetimes."""
    if not isinstance(value, datetime):
        raise TypeError(f"cannot write {type(value).__name__} through json_to_recordset")
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.isoformat()


def id_array(ids: list[int]) -> str:
    """Ids as a PostgreSQL array literal, for ``= ANY(CAST(:ids AS bigint[]))``: as a
    constant the planner knows how many there are (and a string is cheaper to pass
    than a list psycopg2 adapts value by value)."""
    return "{" + ",".join(str(int(i)) for i in ids) + "}"


def ids_param(dialect: str, ids: list[int]) -> Any:
    """``ids`` as the ``:ids`` of a statement that matches them with ``= ANY(CAST(:ids
    AS bigint[]))`` on PostgreSQL (one array literal, ``id_array``) and with an
    expanding ``IN`` elsewhere (the list itself)."""
    return id_array(ids) if dialect == "postgresql" else ids


def _as_json(rows: list[dict[str, Any]]) -> str:
    """The rows as one JSON array (a key a row lacks reads as NULL); JSON columns
    nest as they are, datetimes go as ISO 8601 with their offset."""
    return json.dumps(rows, default=_iso)


@lru_cache(maxsize=32)
def _row_insert(dialect: Any, table: Table, columns: tuple[str, ...], returning: str) -> Any:
    missing = [c.name for c in table.c if c.default is not None and c.name not in columns]
    if missing:  # the PostgreSQL form below would leave them NULL
        raise ValueError(f"rows for {table.name} must give {', '.join(missing)}")
    if dialect.name != "postgresql":
        return _ignoring_conflicts(dialect.name, table).returning(table.c[returning])
    return text(_JSON_INSERT.format(table=table.name, names=", ".join(_names(dialect, columns)),
                                    recordset=_recordset(dialect, table, columns), returning=returning))


def insert_rows_returning(session: Session, table: Table, rows: list[dict[str, Any]],
                          returning: str = "id") -> list[Any]:
    """``insert_ignoring_conflicts`` for a hot path, with a statement built once per
    column set: rows (all with the same keys, every column with a model default
    among them) go in as one statement. Returns ``returning`` of the rows actually
    inserted (a conflicting row returns nothing)."""
    if not rows:
        return []
    dialect = session.get_bind().dialect
    columns = tuple(rows[0])
    statement = _row_insert(dialect, table, columns, returning)
    if dialect.name == "postgresql":
        return list(session.scalars(statement, {"rows": _as_json(rows)}))
    # SQLAlchemy's "insertmanyvalues" runs this executemany as multi-row INSERTs with RETURNING
    return list(session.scalars(statement, rows))


@lru_cache(maxsize=64)
def _row_update(dialect: Any, table: Table, columns: tuple[str, ...], also: tuple[str, ...]) -> TextClause | Any:
    if dialect.name != "postgresql":
        values = {c: bindparam(f"v_{c}", type_=table.c[c].type) for c in columns}
        values |= {a: bindparam(f"set_{a}", type_=table.c[a].type) for a in also}
        return update(table).where(table.c.id == bindparam("v_id")).values(values)
    sets = ", ".join([f"{n} = v.{n}" for n in _names(dialect, columns)]
                     + [f"{n} = :set_{a}" for n, a in zip(_names(dialect, also), also)])
    return text(_JSON_UPDATE.format(table=table.name, sets=sets, recordset=_recordset(dialect, table, ("id", *columns))))


def _group_by_columns(changes: dict[int, dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row_id, changed in changes.items():
        if changed:
            groups[tuple(sorted(changed))].append({"id": row_id, **changed})
    return groups


def update_rows(session: Session, table: Table, changes: dict[int, dict[str, Any]],
                also: dict[str, Any] | None = None) -> None:
    """Write each row's changed columns (``{id: {column: value}}``), and the same
    ``also`` values to every row written; rows with no changes are left alone, as
    the ORM's flush leaves them. One statement per distinct set of changed columns:
    on PostgreSQL an ``UPDATE ... FROM json_to_recordset(...)``, elsewhere an executemany."""
    also = also or {}
    dialect = session.get_bind().dialect
    sets = {f"set_{a}": v for a, v in also.items()}
    for columns, rows in _group_by_columns(changes).items():
        statement = _row_update(dialect, table, columns, tuple(sorted(also)))
        if dialect.name == "postgresql":
            session.execute(statement, {"rows": _as_json(rows), "ids": id_array([row["id"] for row in rows]), **sets})
        else:
            session.execute(statement, [{**{f"v_{c}": row[c] for c in ("id", *columns)}, **sets} for row in rows])
