"""From an HTML form to what the API's schemas take, and their errors back to the
fields: a form sends only strings, the API's schemas want JSON types (and some,
strict, refuse "30" for 30), and their errors name nested paths (``schedule.3``,
``brief.goal``) that a page shows next to the field they belong to."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from marshmallow import Schema, ValidationError

_INTEGER = re.compile(r"[+-]?\d{1,18}")


def number(raw: str | None) -> Any:
    """'30' -> 30, '0.5' -> 0.5, '' -> None; anything else stays the string it was,
    so the API's schema refuses it with its own message ("Not a valid integer.")."""
    text = (raw or "").strip()
    if not text:
        return None
    if _INTEGER.fullmatch(text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return text
    return value if value == value and value not in (float("inf"), float("-inf")) else text


def numbers(raw: str | None) -> Any:
    """'50, 80, 120' -> [50, 80, 120] (each as ``number``); '' -> None."""
    text = (raw or "").strip()
    if not text:
        return None
    return [number(part) for part in re.split(r"[\s,]+", text) if part]


def flat(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """Marshmallow's nested errors ({"schedule": {3: ["..."]}}) as dotted paths
    ({"schedule.3": ["..."]}), the way the domain's errors already name them."""
    if isinstance(errors, Mapping):
        out: dict[str, list[str]] = {}
        for key, value in errors.items():
            out.update(flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(errors, str):
        return {prefix or "_form": [errors]}
    messages = [m for m in errors] if isinstance(errors, Iterable) else [str(errors)]
    if messages and all(isinstance(m, str) for m in messages):
        return {prefix or "_form": list(messages)}
    out = {}
    for value in messages:
        out.update(flat(value, prefix))
    return out


def by_field(errors: Mapping[str, list[str]], fields: Iterable[str]) -> dict[str, list[str]]:
    """Each error under the form field its path starts with (``schedule.3`` under
    ``schedule``; the longest match wins), the rest under ``_form`` with its path
    named, so no message is lost for want of a field to show it by."""
    names = sorted(fields, key=len, reverse=True)
    out: dict[str, list[str]] = {}
    for path, messages in errors.items():
        field = next((n for n in names if path == n or path.startswith(n + ".")), None)
        if field is None:
            out.setdefault("_form", []).extend(f"{path}: {m}" for m in messages)
        else:
            detail = path[len(field) + 1:]
            out.setdefault(field, []).extend(f"{detail}: {m}" if detail else m for m in messages)
    return out


def load(schema: Schema, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The schema's fields of ``values`` (others, such as ``page``, are the page's own),
    empty strings left out (an empty filter box means no filter), loaded by the API's
    ``schema``: (data, {}) or ({}, errors by dotted path)."""
    given = {k: v for k, v in values.items() if k in schema.fields and v not in ("", None)}
    try:
        return schema.load(given), {}
    except ValidationError as exc:
        return {}, flat(exc.messages)
