"""Domain errors of sequencing, and the collector that names each bad field by its path.

The web layer maps these to HTTP (not found 404, conflict 409, invalid 422); domain
code never speaks HTTP. Validation walks user-supplied JSON, so every check here
refuses what PostgreSQL would choke on later (NUL characters, NaN, numbers beyond
the column's range) instead of letting it surface as a 500.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from core.validators import is_int

MAX_INT = 2**31 - 1  # the database's INTEGER: ids and positions beyond it can never match
MAX_JSON_DEPTH = 20


class SequencingError(Exception):
    """Base of the domain's errors."""


class NotFoundError(SequencingError):
    """The resource does not exist in the caller's account."""


class StateConflictError(SequencingError):
    """The action is not allowed in the resource's current state (illegal transition)."""


class PreflightFailedError(SequencingError):
    """An email of the sequence fails the pre-flight check; ``report`` says why."""

    def __init__(self, report: Any) -> None:
        super().__init__("The sequence fails the pre-flight check; fix it or activate with override_preflight.")
        self.report = report


class InvalidInputError(SequencingError):
    """Input failed validation; ``errors`` maps dotted field paths to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("Invalid value for: " + ", ".join(sorted(errors)))
        self.errors = errors


class Problems:
    """Collects errors by field path, so one response lists every mistake at once."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)

    def raise_if_any(self) -> None:
        if self.errors:
            raise InvalidInputError(self.errors)

    def mapping(self, value: Any, path: str) -> dict[str, Any] | None:
        """``value`` if it is an object, else an error and None."""
        if isinstance(value, dict):
            return value
        self.add(path, "Must be an object." if value is not None else "Field may not be null.")
        return None

    def unknown(self, obj: dict[str, Any], allowed: Iterable[str], path: str) -> None:
        allowed = set(allowed)
        for key in obj:
            if key not in allowed:
                self.add(f"{path}.{key}" if path else str(key), "Unknown field.")

    def text(self, obj: dict[str, Any], key: str, path: str, *, required: bool = False,
             max_len: int = 200, min_len: int = 1, single_line: bool = False) -> str | None:
        """A string field: present when required, bounded, free of NUL (and of CR/LF if asked)."""
        where = f"{path}.{key}"
        if key not in obj or obj[key] is None:
            if required:
                self.add(where, "Missing data for required field.")
            return None
        value = obj[key]
        if not isinstance(value, str):
            self.add(where, "Not a valid string.")
            return None
        if len(value) < min_len or len(value) > max_len:
            self.add(where, f"Length must be between {min_len} and {max_len}.")
            return None
        if "\x00" in value or (single_line and ("\r" in value or "\n" in value)):
            self.add(where, "Contains a forbidden control character.")
            return None
        return value

    def integer(self, obj: dict[str, Any], key: str, path: str, *, required: bool = False,
                minimum: int = 0, maximum: int = MAX_INT) -> int | None:
        where = f"{path}.{key}"
        if key not in obj or obj[key] is None:
            if required:
                self.add(where, "Missing data for required field.")
            return None
        value = obj[key]
        if not is_int(value):
            self.add(where, "Not a valid integer.")
            return None
        if not minimum <= value <= maximum:
            self.add(where, f"Must be greater than or equal to {minimum} and less than or equal to {maximum}.")
            return None
        return int(value)

    def number(self, obj: dict[str, Any], key: str, path: str, *, maximum: float,
               allow_zero: bool = True) -> float | int | None:
        """A finite, non-negative number (int or float) no larger than ``maximum``."""
        where = f"{path}.{key}"
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not math.isfinite(value)):
            self.add(where, "Not a valid number.")
            return None
        if value < 0 or value > maximum or (value == 0 and not allow_zero):
            low = "0" if allow_zero else "more than 0"
            self.add(where, f"Must be {low} and at most {maximum:.0f}.")
            return None
        return value

    def json_value(self, value: Any, path: str, depth: int = 0) -> bool:
        """True when ``value`` is JSON that the database can store (no NUL, NaN, or runaway nesting)."""
        if depth > MAX_JSON_DEPTH:
            self.add(path, f"Nested deeper than {MAX_JSON_DEPTH} levels.")
            return False
        if isinstance(value, str):
            if "\x00" in value:
                self.add(path, "Contains a forbidden control character.")
                return False
            return True
        if isinstance(value, float) and not math.isfinite(value):
            self.add(path, "Not a valid number.")
            return False
        if isinstance(value, dict):
            ok = True
            for key, item in value.items():
                if not isinstance(key, str) or "\x00" in key:
                    self.add(path, "Contains a forbidden control character.")
                    return False
                ok = self.json_value(item, f"{path}.{key}", depth + 1) and ok
            return ok
        if isinstance(value, list):
            ok = True
            for index, item in enumerate(value):
                ok = self.json_value(item, f"{path}.{index}", depth + 1) and ok
            return ok
        return value is None or isinstance(value, (bool, int, float))
