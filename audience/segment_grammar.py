"""The segment filter language: what a filter may say, checked node by node.

A filter is a tree of ``{"all": [...]}``, ``{"any": [...]}`` and ``{"not": {...}}``
over typed leaves (docs/segments.md lists them). Every node is checked here, once,
before anything reaches SQL, and every mistake is reported under its path inside
the request (``filter.all.2.op``), all of them at once. The tree is bounded in
depth and size so a saved segment can never become a query the database chokes on.

The output is the filter in a normal form (defaults filled in, domains lower-cased,
times in UTC ISO form) that audience.segment_filter compiles without checking again.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from core.validators import is_int
from models.subscriber import SUBSCRIBER_STATUSES

MAX_DEPTH = 10
MAX_NODES = 100
MAX_IN = 100
MAX_TEXT = 2000
MAX_NAME = 100
MAX_DAYS = 3650
MAX_COUNT = 1_000_000
MAX_INT = 2**31 - 1
# Times a client may give (as web.validators.in_era): 9999-12-31T23:59:59-14:00 is
# past year 9999 in UTC, which Python cannot represent.
EARLIEST_YEAR = 1970
LATEST_YEAR = 9000

COMPARE = ("gt", "gte", "lt", "lte")
ATTRIBUTE_OPS = ("eq", "ne", *COMPARE, "in", "contains", "exists")
SCORES = ("churn_risk", "engagement", "best_send_hour")
SCORE_OPS = ("eq", "ne", *COMPARE)
FIELD_OPS = {"created_at": COMPARE, "email_domain": ("eq", "ne", "in"),
             "timezone": ("eq", "ne", "in", "exists"), "status": ("eq", "ne", "in")}
SEQUENCE_STATUSES = ("in", "completed")
GROUPS = ("all", "any", "not")
# Each leaf kind by the key that names it, with every key it may have.
LEAVES: dict[str, tuple[str, ...]] = {
    "attribute": ("attribute", "op", "value"),
    "tag": ("tag",),
    "event": ("event", "count_gte", "within_days"),
    "opened_within_days": ("opened_within_days",),
    "clicked_within_days": ("clicked_within_days",),
    "score": ("score", "op", "value"),
    "field": ("field", "op", "value"),
    "sequence": ("sequence", "status"),
    "topic": ("topic",),
}
KINDS = (*GROUPS, *LEAVES)

Scalar = str | int | float | bool


class _Check:
    """Walks one filter, collecting errors by path and counting nodes."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}
        self.nodes = 0

    def add(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)

    def node(self, raw: Any, path: str, depth: int) -> dict[str, Any] | None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                self.add(path, f"A filter has at most {MAX_NODES} nodes.")
            return None
        if depth > MAX_DEPTH:
            self.add(path, f"Nested deeper than {MAX_DEPTH} levels.")
            return None
        if not isinstance(raw, dict):
            self.add(path, "Must be an object.")
            return None
        kinds = [k for k in raw if k in KINDS]
        if len(kinds) != 1:
            self.add(path, "Must have exactly one of: " + ", ".join(KINDS) + "."
                     if not kinds else "Has more than one of: " + ", ".join(kinds) + ".")
            return None
        kind = kinds[0]
        allowed = (kind,) if kind in GROUPS else LEAVES[kind]
        for key in raw:
            if key not in allowed:
                self.add(f"{path}.{key}", "Unknown field.")
        if kind == "not":
            child = self.node(raw["not"], f"{path}.not", depth + 1)
            return None if child is None else {"not": child}
        if kind in ("all", "any"):
            return self.group(kind, raw[kind], f"{path}.{kind}", depth)
        return _LEAF_CHECKS[kind](self, raw, path)

    def group(self, kind: str, raw: Any, path: str, depth: int) -> dict[str, Any] | None:
        if not isinstance(raw, list) or (kind == "any" and not raw):
            self.add(path, "Must be a list" + (" of at least one filter." if kind == "any" else "."))
            return None
        children = [self.node(child, f"{path}.{i}", depth + 1) for i, child in enumerate(raw)]
        if any(child is None for child in children):
            return None
        return {kind: children}

    # -- values -------------------------------------------------------------------------

    def text(self, raw: dict[str, Any], key: str, path: str, max_len: int = MAX_NAME) -> str | None:
        value = raw.get(key)
        where = f"{path}.{key}"
        if not isinstance(value, str) or not value:
            self.add(where, "Missing data for required field." if value is None else "Not a valid string.")
            return None
        if len(value) > max_len or "\x00" in value:
            self.add(where, f"At most {max_len} characters, without NUL.")
            return None
        return value

    def integer(self, raw: dict[str, Any], key: str, path: str, low: int, high: int,
                required: bool = True) -> int | None:
        value = raw.get(key)
        where = f"{path}.{key}"
        if value is None:
            if required:
                self.add(where, "Missing data for required field.")
            return None
        if not is_int(value) or not low <= value <= high:
            self.add(where, f"Must be an integer from {low} to {high}.")
            return None
        return int(value)

    def choice(self, raw: dict[str, Any], key: str, path: str, options: tuple[str, ...]) -> str | None:
        value = raw.get(key)
        if value not in options:
            self.add(f"{path}.{key}", "Must be one of: " + ", ".join(options) + ".")
            return None
        return str(value)

    def scalar(self, value: Any, where: str) -> Scalar | None:
        if isinstance(value, bool) or is_int(value):
            return value  # type: ignore[no-any-return]
        if isinstance(value, float):
            if math.isfinite(value):
                return value
            self.add(where, "Not a valid number.")
            return None
        if isinstance(value, str):
            if len(value) > MAX_TEXT or "\x00" in value:
                self.add(where, f"At most {MAX_TEXT} characters, without NUL.")
                return None
            return value
        self.add(where, "Must be a string, a number or a boolean." if value is not None
                 else "Missing data for required field.")
        return None

    def values(self, raw: Any, where: str, each: Callable[[Any, str], Any]) -> list[Any] | None:
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_IN:
            self.add(where, f"Must be a list of 1 to {MAX_IN} values.")
            return None
        checked = [each(v, f"{where}.{i}") for i, v in enumerate(raw)]
        return None if any(v is None for v in checked) else checked

    def no_value(self, raw: dict[str, Any], op: str, path: str) -> None:
        if "value" in raw:
            self.add(f"{path}.value", f"Not allowed with op {op}.")


# -- leaves -------------------------------------------------------------------------------


def _attribute(c: _Check, raw: dict[str, Any], path: str) -> dict[str, Any] | None:
    key = c.text(raw, "attribute", path)
    if key is not None and '"' in key:
        # SQLite's JSON paths cannot name such a key (audience.json_sql); refused on
        # every backend, so a filter means the same on both.
        c.add(f"{path}.attribute", 'Attribute names with a double quote (") cannot be filtered on.')
        key = None
    op = c.choice(raw, "op", path, ATTRIBUTE_OPS)
    if key is None or op is None:
        return None
    if op == "exists":
        c.no_value(raw, op, path)
        return {"attribute": key, "op": op}
    where = f"{path}.value"
    if op == "in":
        value: Any = c.values(raw.get("value"), where, c.scalar)
    else:
        value = c.scalar(raw.get("value"), where)
        if op in COMPARE and isinstance(value, bool):
            c.add(where, f"A boolean cannot be compared with {op}; use eq or ne.")
            return None
    return None if value is None else {"attribute": key, "op": op, "value": value}


def _tag(c: _Check, raw: dict[str, Any], path: str) -> dict[str, Any] | None:
    tag = c.text(raw, "tag", path, max_len=64)
    return None if tag is None else {"tag": tag}


def _event(c: _Check, raw: dict[str, Any], path: str) -> dict[str, Any] | None:
    name = c.text(raw, "event", path)
    count = c.integer(raw, "count_gte", path, 1, MAX_COUNT, required=False)
    days = c.integer(raw, "within_days", path, 1, MAX_DAYS, required=False)
    if name is None or (count is None and raw.get("count_gte") is not None) or (
            days is None and raw.get("within_days") is not None):
        return None
    leaf: dict[str, Any] = {"event": name, "count_gte": count or 1}
    if days is not None:
        leaf["within_days"] = days
    return leaf


def _engagement(kind: str) -> Callable[[_Check, dict[str, Any], str], dict[str, Any] | None]:
    def check(c: _Check, raw: dict[str, Any], path: str) -> dict[str, Any] | None:
        days = c.integer(raw, kind, path, 1, MAX_DAYS)
        return None if days is None else {kind: days}
    return check


def _number(c: _Check, raw: dict[str, Any], path: str) -> float | int | None:
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        c.add(f"{path}.value", "Missing data for required field." if value is None else "Not a valid number.")
        return None
    return value


def _score(c: _Check, raw: dict[str, Any], path: str) -> dict[str, Any] | None:
    score = c.choice(raw, "score", path, SCORES)
    op = c.choice(raw, "op", path, SCORE_OPS)
    value = _number(c, raw, path)
    return None if None in (score, op, value) else {"score": score, "op": op, "value": value}


def _created_at(c: _Check, value: Any, where: str) -> str | None:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) and len(value) <= 40 else None
    except ValueError:
        moment = None
    if moment is None or not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        c.add(where, f"Must be an ISO 8601 time from {EARLIEST_YEAR} to {LATEST_YEAR}, e.g. 2026-01-31T00:00:00Z.")
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def _domain(c: _Check, value: Any, where: str) -> str | None:
    if not isinstance(value, str) or not 1 <= len(value) <= 253 or "@" in value or "\x00" in value:
        c.add(where, "Must be a domain name, e.g. example.com.")
        return None
    return value.strip().lower()


def _short_text(c: _Check, value: Any, where: str) -> str | None:
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or "\x00" in value:
        c.add(where, "Must be a string of 1 to 64 characters.")
        return None
    return value


def _status(c: _Check, value: Any, where: str) -> str | None:
    if value not in SUBSCRIBER_STATUSES:
        c.add(where, "Must be one of: " + ", ".join(SUBSCRIBER_STATUSES) + ".")
        return None
    return str(value)


_FIELD_VALUES: dict[str, Callable[[_Check, Any, str], Any]] = {
    "created_at": _created_at, "email_domain": _domain, "timezone": _short_text, "status": _status}


def _field(c: _Check, raw: dict[str, Any], path: str) -> dict[str, Any] | None:
    field = c.choice(raw, "field", path, tuple(FIELD_OPS))
    if field is None:
        return None
    op = c.choice(raw, "op", path, FIELD_OPS[field])
    if op is None:
        return None
    if op == "exists":
        c.no_value(raw, op, path)
        return {"field": field, "op": op}
    check = _FIELD_VALUES[field]
    where = f"{path}.value"
    if op == "in":
        value = c.values(raw.get("value"), where, lambda v, w: check(c, v, w))
    else:
        value = check(c, raw.get("value"), where)
    return None if value is None else {"field": field, "op": op, "value": value}


def _sequence(c: _Check, raw: dict[str, Any], path: str) -> dict[str, Any] | None:
    sequence = c.integer(raw, "sequence", path, 1, MAX_INT)
    status = c.choice(raw, "status", path, SEQUENCE_STATUSES)
    return None if sequence is None or status is None else {"sequence": sequence, "status": status}


def _topic(c: _Check, raw: dict[str, Any], path: str) -> dict[str, Any] | None:
    key = c.text(raw, "topic", path)
    return None if key is None else {"topic": key}


_LEAF_CHECKS: dict[str, Callable[[_Check, dict[str, Any], str], dict[str, Any] | None]] = {
    "attribute": _attribute, "tag": _tag, "event": _event,
    "opened_within_days": _engagement("opened_within_days"),
    "clicked_within_days": _engagement("clicked_within_days"),
    "score": _score, "field": _field, "sequence": _sequence, "topic": _topic,
}


def check_filter(raw: Any, path: str = "filter") -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    """The filter in normal form and no errors, or None and every error by path."""
    check = _Check()
    node = check.node(raw, path, 1)
    return (node if not check.errors else None), check.errors


def names_status(node: dict[str, Any]) -> bool:
    """Whether the filter has a ``status`` field leaf anywhere (then it, not the
    default of active subscribers only, decides which statuses are in)."""
    if "all" in node or "any" in node:
        return any(names_status(child) for child in node.get("all", node.get("any", [])))
    if "not" in node:
        return names_status(node["not"])
    return node.get("field") == "status"
