"""The CSV spelling of the analytics answers (``?format=csv``): one writer, so every
endpoint validates ``format``, spells empty values and declares its type the same way.

The body is streamed, a block of rows at a time, as ``rows`` yields them: a CSV of
a million scores is never held whole in memory (the body is the same, byte for
byte, as one written at once)."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from flask import Response, has_request_context, stream_with_context
from marshmallow import Schema, fields, validate

FORMATS = ("json", "csv")
# Rows written between two blocks of the body.
BLOCK_ROWS = 2000


class FormatQuerySchema(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS),
                           metadata={"description": "`csv`: the rows as CSV, with a header line."})


# A text cell starting with one of these is a formula to a spreadsheet (OWASP's "CSV
# injection"): a variant named "=HYPERLINK(...)" would run when the file is opened.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """JSON's spelling: null is an empty cell, booleans are ``true``/``false``; text a
    spreadsheet would read as a formula is quoted with a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def csv_lines(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The CSV text of ``rows`` under a header of ``columns``, in blocks of
    ``BLOCK_ROWS`` rows (a column a row lacks is empty)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    written = 0
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
        written += 1
        if written == BLOCK_ROWS:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            written = 0
    yield out.getvalue()


def csv_response(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], filename: str) -> Response:
    """``rows`` as CSV under a header of ``columns`` (a column a row lacks is empty),
    served as ``text/csv; charset=utf-8`` to be saved as ``filename``. The body is
    streamed; ``rows`` may be a generator reading the request's database session,
    which stays open until the last row is sent."""
    lines = csv_lines(columns, rows)
    return Response(stream_with_context(lines) if has_request_context() else lines, mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})
