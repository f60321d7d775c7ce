"""Request bodies and path ids checked once, before any view, for what Python or the
database cannot take: every schema, raw JSON field (steps, settings, attributes,
config) and future endpoint is covered without a check of its own.

A JSON body is refused when it

- is nested deeper than ``MAX_DEPTH`` (400): ``json`` recurses per level and raises
  RecursionError near 1,000, and the NUL guard, marshmallow and the JSON columns'
  serialisers recurse after it;
- has an integer outside 64 bits (422 naming the field): Python refuses to parse
  more than 4,300 digits, and no column (BIGINT, SQLite's INTEGER) holds more than
  64 bits, so a larger id is an OverflowError on SQLite rather than a miss;
- has NaN, Infinity, or a float that overflows to infinity (422): not JSON, and
  PostgreSQL's jsonb refuses them;
- has a lone surrogate (``"\\ud800"``) in a string or key (422 naming the field):
  JSON can escape one, but neither psycopg2 nor sqlite3 can encode it.

Views whose body is an upload to read row by row (imports, which report bad rows
one by one) are marked with ``raw_body`` and skipped. Path ids (``<int:...>``) are
bounded to the ``integer`` columns, so a 30-digit id is a 404, not an error in SQL.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from flask import Flask, request
from flask_smorest import abort
from werkzeug.routing import IntegerConverter, Map, ValidationError

from core.json_values import Path, TooDeepError, Unusable, bounded_int, problems
from web.validators import MAX_ID

MAX_DEPTH = 64
F = TypeVar("F", bound=Callable[..., Any])


def _float(text: str) -> float | Unusable:
    value = float(text)
    return value if math.isfinite(value) else Unusable("Number out of range.")


def _constant(name: str) -> Unusable:
    return Unusable(f"{name} is not a JSON number.")


def parse(data: bytes) -> Any:
    """The body as JSON, with unusable numbers left as markers for ``problems``.
    Raises ValueError (not JSON) or RecursionError (nested past the parser's limit)."""
    return json.loads(data, parse_int=bounded_int, parse_float=_float, parse_constant=_constant)


def raw_body(view: F) -> F:
    """Mark a view that reads its JSON body itself (row by row) and reports its own errors."""
    view._raw_json_body = True  # type: ignore[attr-defined]
    return view


def _is_raw(app: Flask) -> bool:
    view = app.view_functions.get(request.endpoint or "")
    handler = getattr(getattr(view, "view_class", None), request.method.lower(), view)
    return bool(getattr(handler, "_raw_json_body", False))


def _refuse(code: int, found: dict[Path, list[str]], summary: str) -> NoReturn:
    """Abort in the API's error shape (flask-smorest's handler writes it). The API
    already names a field inside another two ways: nested, as marshmallow does
    (``{"tags": {"1": [...]}}``), and by dotted path, as ``audience`` and the
    sequence checks do (``{"attributes.plan": [...]}``); a refusal here gives both,
    so a client finds the field the way the endpoint named it before. The message
    names dotted paths (``tags.1``)."""
    errors: dict[str, Any] = {}
    for path, messages in found.items():
        node = errors
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = messages
        if len(path) > 1:
            errors[".".join(path)] = messages
    names = ", ".join(sorted(".".join(path) for path in found))
    abort(code, errors={"json": errors}, message=f"{summary}: {names}")


class IdConverter(IntegerConverter):
    """``<int:...>`` bounded to the ``integer`` id columns (at most 2^31 - 1); a larger
    id does not match the route (404) and is never handed to ``int()`` (which refuses
    over 4,300 digits) or to the database (which cannot compare it on SQLite)."""

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None,  # noqa: A002 (werkzeug's names)
                 max: int | None = MAX_ID, signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)

    def to_python(self, value: str) -> int:
        if self.max is not None and len(value.lstrip("0")) > len(str(self.max)):
            raise ValidationError()
        return super().to_python(value)  # type: ignore[no-any-return]


def init_json_input(app: Flask) -> None:
    """Install the body check and the bounded id converter; call before blueprints
    are registered (their rules take the converter when added) and before the NUL
    guard (which parses the body too)."""
    app.url_map.converters["int"] = IdConverter

    @app.before_request
    def _check_json_body() -> None:
        # Not Content-Length: a chunked body has none, and webargs reads it all the same.
        if not request.path.startswith("/api/") or not request.is_json:
            return None
        if _is_raw(app):
            return None
        deep = [f"Nested deeper than {MAX_DEPTH} levels."]
        try:
            found = problems(parse(request.get_data(cache=True)), max_depth=MAX_DEPTH)
        except RecursionError:
            _refuse(400, {("body",): deep}, "The JSON body is nested too deep")
        except TooDeepError as exc:
            _refuse(400, {exc.path: deep}, "The JSON body is nested too deep")
        except ValueError:  # malformed JSON or not UTF-8: the schema's parser answers that (400) as before
            return None
        if found:
            _refuse(422, found, "Invalid value for")
        return None
