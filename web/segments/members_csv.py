"""A segment's members now, all of them, as CSV: the API's ``?format=csv`` and the
console's export link answer with the same file."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Response
from sqlalchemy import Select

from audience import segments as domain
from models import Segment, Subscriber, utcnow
from web.csv_response import csv_response
from web.db import get_db

CSV_COLUMNS = ("id", "email", "first_name", "last_name", "timezone", "status", "created_at")
CSV_BATCH = 5000


def _all_members(statement: Select[Any]) -> Iterator[dict[str, Any]]:
    """Every member's CSV columns through a server-side cursor, a batch at a time."""
    result = get_db().execute(statement.with_only_columns(*(getattr(Subscriber, c) for c in CSV_COLUMNS)),
                              execution_options={"yield_per": CSV_BATCH})
    try:
        for row in result:
            yield dict(row._mapping)
    finally:
        result.close()


def members_csv(segment: Segment) -> Response:
    """The segment (already checked to be the caller's) as ``segment-<id>.csv``."""
    statement = domain.members(segment.account_id, segment.filter, utcnow())
    return csv_response(CSV_COLUMNS, _all_members(statement), f"segment-{segment.id}.csv")
