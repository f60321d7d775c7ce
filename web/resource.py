"""What every resource's views share: a domain error turned into the API's one
error shape, and the caller's row by id or 404.

Domain code raises its own errors and never knows about HTTP; each resource
declares once which of them mean which status, instead of a try/except per view.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from flask_smorest import abort
from sqlalchemy import Select, select

from web.auth import current_account_id
from web.db import get_db
from web.validators import MAX_ID

Errors = Mapping[str, Any]
M = TypeVar("M")


@dataclass(frozen=True)
class On:
    """``error`` (or a subclass) answers ``code``; the message is ``message`` or the
    error's own text, and ``errors`` builds the body's per-field part, if any."""

    error: type[BaseException]
    code: int
    message: str | None = None
    errors: Callable[[Any], Errors] | None = None


def field_errors(location: str, field: str | None = None) -> Callable[[Any], Errors]:
    """``{location: {field: [message]}}``; without ``field`` the error's ``.field`` names it."""
    def build(exc: Any) -> Errors:
        return {location: {field or exc.field: [str(exc)]}}
    return build


def errors_attribute(location: str) -> Callable[[Any], Errors]:
    """``{location: exc.errors}``, for errors that already map each field to its messages."""
    def build(exc: Any) -> Errors:
        return {location: exc.errors}
    return build


def _abort(rule: On, exc: BaseException) -> None:
    extra = {"errors": rule.errors(exc)} if rule.errors is not None else {}
    abort(rule.code, message=rule.message if rule.message is not None else str(exc), **extra)


class ErrorMap:
    """A reusable context manager that aborts with the first matching rule's status;
    other exceptions pass through. Rules are tried in order, like ``except`` clauses."""

    def __init__(self, rules: tuple[On, ...]) -> None:
        self.rules = rules

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if exc is not None:
            for rule in self.rules:
                if isinstance(exc, rule.error):
                    _abort(rule, exc)
        return False


def map_errors(*rules: On) -> ErrorMap:
    """Declared once per resource (``_errors = map_errors(On(...), ...)``), used as
    ``with _errors:`` around the domain call."""
    return ErrorMap(rules)


def newest_owned(model: type[Any], filters: Mapping[str, Any] | None = None) -> Select[Any]:
    """The caller's ``model`` rows, newest first, where each column named in ``filters``
    equals its value: a list endpoint's query, with the account filter always in it."""
    statement = select(model).where(model.account_id == current_account_id())
    for name, value in (filters or {}).items():
        statement = statement.where(getattr(model, name) == value)
    return statement.order_by(model.id.desc())


def get_owned_or_404(model: type[M], row_id: int, message: str, errors: Errors | None = None) -> M:
    """The caller's ``model`` row ``row_id``. Missing and another account's rows are the
    same 404, so ids never reveal other tenants; the account filter is in the query."""
    row = None
    if 0 < row_id <= MAX_ID:
        row = get_db().scalar(select(model).where(
            model.id == row_id, model.account_id == current_account_id()))  # type: ignore[attr-defined]
    if row is None:
        abort(404, message=message, **({"errors": errors} if errors is not None else {}))
    return row  # type: ignore[return-value]
