"""The API's marshmallow schemas, used by the console's forms and filters: load the
form (or the query string) with the same schema the API route takes, and get its
messages back by field, to show next to each field."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError


def flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages as ``{"field.sub": [messages]}``."""
    if isinstance(messages, Mapping):
        out: dict[str, list[str]] = {}
        for key, value in messages.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(messages, (list, tuple)) and all(isinstance(m, str) for m in messages):
        return {prefix or "_schema": list(messages)}
    return {prefix or "_schema": [str(messages)]}


def load(schema: Schema, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The schema's fields of ``values`` (others, such as ``page``, are the page's own),
    empty strings left out (an empty filter box means no filter), loaded by
    ``schema``: (data, {}) or ({}, errors by field)."""
    given = {k: v for k, v in values.items() if k in schema.fields and v not in ("", None)}
    try:
        return schema.load(given), {}
    except ValidationError as exc:
        return {}, flatten(exc.messages)
