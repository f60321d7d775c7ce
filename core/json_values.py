"""JSON values no database can store, found in one walk: the API's body check
(``web.json_input``) and JSON imports, row by row (``audience.payloads``), both
parse with ``bounded_int`` and report what ``problems`` finds.

- an integer outside 64 bits: Python refuses to parse more than 4,300 digits, and
  no column (BIGINT, SQLite's INTEGER) holds more than 64 bits;
- a lone surrogate (``"\\ud800"``) in a string or key: JSON can escape one, but
  neither psycopg2 nor sqlite3 can encode it.
"""
from __future__ import annotations

from typing import Any

INT64 = 2**63
SURROGATE = "Contains a lone surrogate, which is not a character."
KEY_SURROGATE = "The key contains a lone surrogate, which is not a character."

Path = tuple[str, ...]


class Unusable:
    """A number the parser was handed that no field can take, kept in place so the
    walk that follows can name its path."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def bounded_int(digits: str) -> int | Unusable:
    """``json.loads``'s ``parse_int``: the integer, or a marker when it is past 64 bits."""
    # Length first: int() of more than 4,300 digits raises, and is quadratic below that.
    if len(digits.lstrip("-")) > 19 or not -INT64 <= (value := int(digits)) < INT64:
        return Unusable("Integer out of range (at most 64 bits).")
    return value


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _printable(name: str) -> str:
    """A name as an error can show it (a key may itself hold the surrogate)."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


class TooDeepError(ValueError):
    """The value nests past ``max_depth``; ``path`` is where it crossed."""

    def __init__(self, path: Path, max_depth: int) -> None:
        super().__init__(f"Nested deeper than {max_depth} levels.")
        self.path = path


def problems(value: Any, *, max_depth: int | None = None,
             key_message: str = KEY_SURROGATE) -> dict[Path, list[str]] | None:
    """Messages by path (``("body",)`` for the whole) for a parsed value, in the
    order found, or None when it is fine; raises TooDeepError past ``max_depth``.
    Iterative, so a deep value cannot exhaust the stack here either."""
    found: dict[Path, list[str]] = {}
    stack: list[tuple[Any, Path]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        where = path or ("body",)
        if max_depth is not None and len(path) > max_depth:
            raise TooDeepError(where, max_depth)
        if isinstance(item, Unusable):
            found[where] = [item.reason]
        elif isinstance(item, str):
            if _has_surrogate(item):
                found[where] = [SURROGATE]
        elif isinstance(item, dict):
            for key, child in item.items():
                if _has_surrogate(key):
                    found[(*path, _printable(key))] = [key_message]
                else:
                    stack.append((child, (*path, key)))
        elif isinstance(item, list):
            stack.extend((child, (*path, str(i))) for i, child in enumerate(item))
    return found or None
