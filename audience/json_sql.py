"""JSON tests on subscribers' ``attributes`` and ``tags`` that compile to each
backend's own SQL when the statement is compiled, not when it is built.

A segment's query is built without a session (``audience.segment_filter.member_ids``
hands a ``Select`` to whoever runs it, on PostgreSQL or the embedded SQLite), so
the dialect cannot be asked up front as ``audience.subscribers._has_tag`` does.
``ByDialect`` carries both spellings and the compiler picks one. On PostgreSQL
equality and membership are JSONB containment (``@>``), which a GIN index with
``jsonb_path_ops`` answers; SQLite walks ``json_each`` / ``json_extract``.
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (Boolean, ColumnElement, Numeric, String, and_, case, cast, exists, func, literal,
                        literal_column, select)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

from models import Subscriber


class ByDialect(ColumnElement[bool]):
    """A boolean that is ``postgresql`` on PostgreSQL and ``other`` elsewhere (SQLite)."""

    type = Boolean()
    inherit_cache = False
    _traverse_internals = [("postgresql", InternalTraversal.dp_clauseelement),
                           ("other", InternalTraversal.dp_clauseelement)]

    def __init__(self, postgresql: ColumnElement[bool], other: ColumnElement[bool]) -> None:
        self.postgresql = postgresql
        self.other = other


@compiles(ByDialect)
def _other(element: ByDialect, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.other, **kw))


@compiles(ByDialect, "postgresql")
def _postgresql(element: ByDialect, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.postgresql, **kw))


def _contains(column: Any, document: Any) -> ColumnElement[bool]:
    """PostgreSQL: ``column @> document`` (GIN-indexable)."""
    document_sql = cast(literal(json.dumps(document)), JSONB)
    return column.op("@>", is_comparison=True)(document_sql).self_group()  # type: ignore[no-any-return]


def _text_of(key: str) -> ColumnElement[str]:
    """PostgreSQL: ``attributes ->> key``, typed as text so values bind as plain strings."""
    return Subscriber.attributes.op("->>", return_type=String)(literal(key, String()))  # type: ignore[no-any-return]


def _json_of(key: str) -> ColumnElement[Any]:
    """PostgreSQL: ``attributes -> key``."""
    return Subscriber.attributes.op("->", return_type=JSONB)(literal(key, String()))  # type: ignore[no-any-return]


def _path(key: str) -> str:
    return "$." + json.dumps(key, ensure_ascii=False)


def has_tag(tag: str) -> ColumnElement[bool]:
    """The subscriber's ``tags`` list holds ``tag``."""
    each = func.json_each(Subscriber.tags).table_valued("value")
    return ByDialect(_contains(Subscriber.tags, [tag]),
                     exists(select(literal_column("1")).select_from(each).where(each.c.value == tag)))


def attribute_equals(key: str, value: str | int | float | bool) -> ColumnElement[bool]:
    """``attributes[key]`` is the scalar ``value`` (a number equals the same number
    written as float; a list holding it is not equal to it)."""
    extracted = func.json_extract(Subscriber.attributes, _path(key))
    kind = func.json_type(Subscriber.attributes, _path(key))
    if isinstance(value, bool):
        other = kind == ("true" if value else "false")
    elif isinstance(value, str):
        other = and_(kind == "text", extracted == value)
    else:
        other = and_(kind.in_(("integer", "real")), extracted == value)
    return ByDialect(_contains(Subscriber.attributes, {key: value}), func.coalesce(other, False))


def attribute_list_has(key: str, value: str | int | float | bool) -> ColumnElement[bool]:
    """``attributes[key]`` is a list holding ``value``."""
    each = func.json_each(Subscriber.attributes, _path(key)).table_valued("value", "type")
    if isinstance(value, bool):
        match = each.c.type == ("true" if value else "false")
    else:
        match = and_(each.c.type.in_(("text",) if isinstance(value, str) else ("integer", "real")),
                     each.c.value == value)
    other = and_(func.json_type(Subscriber.attributes, _path(key)) == "array",
                 exists(select(literal_column("1")).select_from(each).where(match)))
    return ByDialect(_contains(Subscriber.attributes, {key: [value]}), func.coalesce(other, False))


def attribute_has_substring(key: str, text: str) -> ColumnElement[bool]:
    """``attributes[key]`` is a string containing ``text`` (case-sensitive, as ``eq``)."""
    pg_value = _text_of(key)
    pg = and_(func.jsonb_typeof(_json_of(key)) == "string",
              func.strpos(pg_value, text) > 0)
    other = and_(func.json_type(Subscriber.attributes, _path(key)) == "text",
                 func.instr(func.json_extract(Subscriber.attributes, _path(key)), text) > 0)
    return ByDialect(func.coalesce(pg, False), func.coalesce(other, False))


def attribute_exists(key: str) -> ColumnElement[bool]:
    """``attributes`` has ``key`` (with any value but null)."""
    pg = and_(Subscriber.attributes.op("?", is_comparison=True)(literal(key, String())),
              func.jsonb_typeof(_json_of(key)) != "null")
    other = func.json_type(Subscriber.attributes, _path(key)).notin_(("null",))
    return ByDialect(func.coalesce(pg, False), func.coalesce(other, False))


def attribute_compare(key: str, op: str, value: str | int | float) -> ColumnElement[bool]:
    """``attributes[key] <op> value`` for gt/gte/lt/lte: numbers against numbers,
    strings against strings; an attribute of another type (or none) never matches."""
    compare = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}[op]
    pg_text = _text_of(key)
    pg_kind = func.jsonb_typeof(_json_of(key))
    sqlite_kind = func.json_type(Subscriber.attributes, _path(key))
    sqlite_value = func.json_extract(Subscriber.attributes, _path(key))
    if isinstance(value, str):
        pg = and_(pg_kind == "string", getattr(pg_text, compare)(value))
        other = and_(sqlite_kind == "text", getattr(sqlite_value, compare)(value))
    else:
        # CASE, not AND: PostgreSQL may evaluate an AND's operands in any order, and
        # casting a string attribute to numeric would fail the whole query.
        number = case((pg_kind == "number", cast(pg_text, Numeric())), else_=None)
        # Bound as numeric, not as the INTEGER a Python int would be: 2**40 is a fine attribute value.
        pg = getattr(number, compare)(literal(value, Numeric()))
        other = and_(sqlite_kind.in_(("integer", "real")), getattr(sqlite_value, compare)(value))
    return ByDialect(func.coalesce(pg, False), func.coalesce(other, False))
