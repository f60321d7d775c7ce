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
from typing import Any, TypeVar

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.routing import IntegerConverter, Map, ValidationError

from web.validators import MAX_ID

MAX_DEPTH = 64
INT64 = 2**63
F = TypeVar("F", bound=Callable[..., Any])


class _Bad:
    """A number the parser was handed that no field can take, kept in place so the
    walk that follows can name its path."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _int(digits: str) -> int | _Bad:
    # Length first: int() of more than 4,300 digits raises, and is quadratic below that.
    if len(digits.lstrip("-")) > 19 or not -INT64 <= (value := int(digits)) < INT64:
        return _Bad("Integer out of range (at most 64 bits).")
    return value


def _float(text: str) -> float | _Bad:
    value = float(text)
    return value if math.isfinite(value) else _Bad("Number out of range.")


def _constant(name: str) -> _Bad:
    return _Bad(f"{name} is not a JSON number.")


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _printable(name: str) -> str:
    """A name as the error body can show it (a key may itself hold the surrogate)."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


Path = tuple[str, ...]


class TooDeepError(ValueError):
    """The body nests past ``MAX_DEPTH``; ``path`` is where it crossed."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"Nested deeper than {MAX_DEPTH} levels.")
        self.path = path


def problems(value: Any) -> dict[Path, list[str]] | None:
    """Messages by path (``("body",)`` for the whole) for a parsed body, or None when
    it is fine; raises TooDeepError. Iterative, so a deep body cannot exhaust the
    stack here either."""
    found: dict[Path, list[str]] = {}
    stack: list[tuple[Any, Path]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        where = path or ("body",)
        if len(path) > MAX_DEPTH:
            raise TooDeepError(where)
        if isinstance(item, _Bad):
            found[where] = [item.reason]
        elif isinstance(item, str):
            if _has_surrogate(item):
                found[where] = ["Contains a lone surrogate, which is not a character."]
        elif isinstance(item, dict):
            for key, child in item.items():
                if _has_surrogate(key):
                    found[(*path, _printable(key))] = ["The key contains a lone surrogate, which is not a character."]
                else:
                    stack.append((child, (*path, key)))
        elif isinstance(item, list):
            stack.extend((child, (*path, str(i))) for i, child in enumerate(item))
    return found or None


def parse(data: bytes) -> Any:
    """The body as JSON, with unusable numbers left as markers for ``problems``.
    Raises ValueError (not JSON) or RecursionError (nested past the parser's limit)."""
    return json.loads(data, parse_int=_int, parse_float=_float, parse_constant=_constant)


def raw_body(view: F) -> F:
    """Mark a view that reads its JSON body itself (row by row) and reports its own errors."""
    view._raw_json_body = True  # type: ignore[attr-defined]
    return view


def _is_raw(app: Flask) -> bool:
    view = app.view_functions.get(request.endpoint or "")
    handler = getattr(getattr(view, "view_class", None), request.method.lower(), view)
    return bool(getattr(handler, "_raw_json_body", False))


def _refuse(code: int, found: dict[Path, list[str]], summary: str) -> ResponseReturnValue:
    """The API's error shape. The API already names a field inside another two ways:
    nested, as marshmallow does (``{"tags": {"1": [...]}}``), and by dotted path, as
    ``audience`` and the sequence checks do (``{"attributes.plan": [...]}``); a
    refusal here gives both, so a client finds the field the way the endpoint
    named it before. The message names dotted paths (``tags.1``)."""
    errors: dict[str, Any] = {}
    for path, messages in found.items():
        node = errors
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = messages
        if len(path) > 1:
            errors[".".join(path)] = messages
    names = ", ".join(sorted(".".join(path) for path in found))
    status = "Bad Request" if code == 400 else "Unprocessable Entity"
    return jsonify({"code": code, "status": status, "errors": {"json": errors}, "message": f"{summary}: {names}"}), code


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
    def _check_json_body() -> ResponseReturnValue | None:
        # Not Content-Length: a chunked body has none, and webargs reads it all the same.
        if not request.path.startswith("/api/") or not request.is_json:
            return None
        if _is_raw(app):
            return None
        deep = [f"Nested deeper than {MAX_DEPTH} levels."]
        try:
            found = problems(parse(request.get_data(cache=True)))
        except RecursionError:
            return _refuse(400, {("body",): deep}, "The JSON body is nested too deep")
        except TooDeepError as exc:
            return _refuse(400, {exc.path: deep}, "The JSON body is nested too deep")
        except ValueError:  # malformed JSON or not UTF-8: the schema's parser answers that (400) as before
            return None
        if found:
            return _refuse(422, found, "Invalid value for")
        return None
