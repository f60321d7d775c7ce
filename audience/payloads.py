"""Reading import files: CSV with a header row, or a JSON list of objects.

Row numbers in errors are what a person finds in the file: for CSV the line
number (the header is row 1, so the first subscriber is row 2, as in a
spreadsheet); for JSON the item's position counting from 1.

CSV columns ``email``, ``first_name``, ``last_name``, ``timezone`` and ``tags``
(separated by ``;`` or ``|``) are fields, matched case-insensitively; any other
column becomes an attribute under its header's name. An empty cell means "not
given": a re-import never blanks a value it does not mention. JSON objects use the
same keys, plus an optional ``attributes`` object; other keys are attributes too.
"""
from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from audience import fields as f
from audience.errors import ImportPayloadError, ImportTooLargeError
from core.errors import InvalidFieldError
from core.json_values import SURROGATE, bounded_int, problems

FORMATS = ("csv", "json")
MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 500_000
RESERVED = ("email", "first_name", "last_name", "timezone", "tags")
# A subscriber keeps at most ATTRIBUTES_MAX (100) attributes, so a header is useful up
# to the five fields plus those; 1,000 leaves room for sparse exports whose rows
# fill different columns, and keeps a 50 MB header from being one request's work.
MAX_COLUMNS = 1000


@dataclass
class ImportRow:
    """One cleaned row; None for a name or timezone means "leave as it is"."""

    email: str
    first_name: str | None = None
    last_name: str | None = None
    timezone: str | None = None
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)


def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportPayloadError(f"The CSV file must be UTF-8 (undecodable byte at offset {exc.start}).") from None


def _csv_rows(payload: bytes) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(_text(payload), newline=""))
    try:
        for cells in reader:
            if cells and any(c.strip() for c in cells):
                yield reader.line_num, cells
    except csv.Error as exc:
        raise ImportPayloadError(f"The CSV file is malformed at line {reader.line_num}: {exc}.") from None


def _csv_header(cells: list[str]) -> list[str]:
    if len(cells) > MAX_COLUMNS:
        raise ImportPayloadError(f"The CSV header row has {len(cells)} columns; at most {MAX_COLUMNS}.", field="header")
    names = [c.strip() for c in cells]
    keys = [n.lower() if n.lower() in RESERVED else n for n in names]
    if "email" not in keys:
        raise ImportPayloadError("The CSV header row has no 'email' column.")
    if "" in keys:
        raise ImportPayloadError("The CSV header row has an empty column name.")
    repeated = sorted(k for k, n in Counter(keys).items() if n > 1)
    if repeated:
        raise ImportPayloadError("The CSV header row repeats: " + ", ".join(repeated) + ".")
    return keys


def _json_items(payload: bytes) -> list[Any]:
    try:
        items = json.loads(payload, parse_int=bounded_int)
    except RecursionError:
        raise ImportPayloadError("The body's JSON is nested too deep to read.") from None
    except ValueError as exc:
        raise ImportPayloadError(f"The body is not valid JSON: {exc}.") from None
    if not isinstance(items, list):
        raise ImportPayloadError("The JSON body must be a list of subscriber objects.")
    return items


def count_rows(payload: bytes, fmt: str) -> int:
    """Check the upload as a whole and return its number of rows; raise
    ImportPayloadError (empty, unreadable, no email column) or ImportTooLargeError."""
    if fmt not in FORMATS:
        raise ImportPayloadError(f"Unknown import format {fmt!r}; use csv or json.", field="format")
    if len(payload) > MAX_BYTES:
        raise ImportTooLargeError(f"The import is larger than {MAX_BYTES // (1024 * 1024)} MB; split it.")
    if not payload.strip():
        raise ImportPayloadError("The import is empty.")
    if fmt == "json":
        total = len(_json_items(payload))
    else:
        rows = _csv_rows(payload)
        first = next(rows, None)
        if first is None:
            raise ImportPayloadError("The import is empty.")
        _csv_header(first[1])
        total = sum(1 for _ in rows)
    if total == 0:
        raise ImportPayloadError("The import has no subscriber rows.")
    if total > MAX_ROWS:
        raise ImportTooLargeError(f"The import has {total} rows; at most {MAX_ROWS} per import.")
    return total


def _unstorable(item: dict[str, Any]) -> str | None:
    """``"field: error"`` for the first value of a JSON row that no database can
    store (``core.json_values``), or None."""
    found = problems(item, key_message=SURROGATE)
    if found is None:
        return None
    path, messages = next(iter(found.items()))
    return f"{'.'.join(path)}: {messages[0]}"


def _row_from_mapping(item: dict[str, Any], nested: bool) -> ImportRow:
    """``nested``: JSON may carry an ``attributes`` object; in CSV that is just a column."""
    extra = {k: v for k, v in item.items() if k not in RESERVED and not (nested and k == "attributes")}
    attributes = f.clean_attributes(item.get("attributes")) if nested else {}
    attributes.update(f.clean_attributes(extra))
    return ImportRow(
        email=f.normalise_email(item.get("email")),
        first_name=f.clean_name(item.get("first_name"), "first_name"),
        last_name=f.clean_name(item.get("last_name"), "last_name"),
        timezone=f.clean_timezone(item.get("timezone")),
        tags=f.clean_tags(item.get("tags")),
        attributes=attributes,
    )


def read_rows(payload: bytes, fmt: str) -> Iterator[tuple[int, ImportRow | str]]:
    """Yield ``(row number, cleaned row)`` or ``(row number, "field: error")`` for
    every data row, in file order."""
    if fmt == "json":
        for number, item in enumerate(_json_items(payload), start=1):
            if not isinstance(item, dict):
                yield number, "Must be an object."
                continue
            if (error := _unstorable(item)) is not None:
                yield number, error
                continue
            try:
                yield number, _row_from_mapping(item, nested=True)
            except InvalidFieldError as exc:
                yield number, str(exc)
        return
    rows = _csv_rows(payload)
    first = next(rows, None)
    if first is None:
        return
    keys = _csv_header(first[1])
    for number, cells in rows:
        if len(cells) > len(keys) and any(c.strip() for c in cells[len(keys):]):
            yield number, f"Has {len(cells)} cells but the header has {len(keys)} columns."
            continue
        # Empty cells are "not given", so they are left out rather than cleared.
        item = {k: c.strip() for k, c in zip(keys, cells) if c.strip()}
        try:
            yield number, _row_from_mapping(item, nested=False)
        except InvalidFieldError as exc:
            yield number, str(exc)
