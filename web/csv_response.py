"""The CSV spelling of the analytics answers (``?format=csv``): one writer, so every
endpoint validates ``format``, spells empty values and declares its type the same way."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flask import Response
from marshmallow import Schema, fields, validate

FORMATS = ("json", "csv")


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


def csv_response(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], filename: str) -> Response:
    """``rows`` as CSV under a header of ``columns`` (a column a row lacks is empty),
    served as ``text/csv; charset=utf-8`` to be saved as ``filename``."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows([_cell(row.get(column)) for column in columns] for row in rows)
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})
