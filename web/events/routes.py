"""Custom events (conversions, exit goals, triggers), and history imports.

A history import's body is streamed into the job's stored parts as it arrives
(``audience.event_import``): the request reads it in blocks and counts lines, and
the ``audience.import_events`` task, enqueued after the job commits, checks rows.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from audience.errors import ImportPayloadError, ImportTooLargeError
from audience.event_import import MAX_BYTES, TOO_LARGE, create_event_import_job
from models.base import utcnow
from sequencing.intake import UnknownSubscriberError, ingest_event
from web.auth import SECURITY, account_required, current_account_id
from web.db import get_db
from web.enqueue import enqueue_stored
from web.events.schemas import EventCreatedSchema, EventCreateSchema
from web.json_input import raw_body
from web.resource import On, field_errors, map_errors
from web.subscribers.schemas import ImportAcceptedSchema


blp = Blueprint("events", __name__, url_prefix="/api/v1/events", description="Custom events")

_errors = map_errors(On(UnknownSubscriberError, 404, "Subscriber not found.",
                        errors=lambda _exc: {"json": {"subscriber_id": ["Not found."]}}),
                   On(ImportTooLargeError, 413, errors=field_errors("body")),
                   On(ImportPayloadError, 422, errors=field_errors("body")))

CSV_TYPES = ("text/csv", "application/csv")
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/jsonlines")
BLOCK = 1024 * 1024
IMPORT_DOC = {
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/x-ndjson": {"schema": {"type": "string"}},
    },
}


@blp.route("")
class Events(MethodView):
    @account_required
    @blp.arguments(EventCreateSchema)
    @blp.response(202, EventCreatedSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Record an event for a subscriber (by id or email); it may start or end sequences."""
        session = get_db()
        with _errors:
            intake = ingest_event(
                session, current_account_id(), data["name"], utcnow(), subscriber_id=data.get("subscriber_id"),
                email=data.get("email"), properties=data["properties"], value=data["value"],
                occurred_at=data["occurred_at"], client_event_id=data["id"])
        session.commit()
        return {"id": intake.event_id, "subscriber_id": intake.subscriber_id,
                "duplicate": intake.event_id is None, "enrolled": intake.enrolled}


def _upload() -> tuple[Iterator[bytes], str]:
    """The body in blocks, never whole, and its format."""
    if request.mimetype in CSV_TYPES:
        fmt = "csv"
    elif request.mimetype in NDJSON_TYPES:
        fmt = "ndjson"
    else:
        abort(415, message="Send the history as text/csv (with a header row) or application/x-ndjson "
                           "(one JSON object a line).")
    if request.content_length is not None and request.content_length > MAX_BYTES:
        raise ImportTooLargeError(TOO_LARGE, field="body")
    stream = request.stream

    def blocks() -> Iterator[bytes]:
        while block := stream.read(BLOCK):
            yield block

    return blocks(), fmt


@blp.route("/import")
class EventImport(MethodView):
    @raw_body  # rows are checked one by one by the import job
    @account_required
    @blp.response(202, ImportAcceptedSchema)
    @blp.doc(security=SECURITY, requestBody=IMPORT_DOC)
    def post(self) -> dict[str, Any]:
        """Import event history from another platform: CSV with a header row, or JSON
        lines (``application/x-ndjson``), up to 5,000,000 rows and 1 GiB. Each row:
        ``email``, ``name`` (sent, delivered, opened, clicked, bounced, complained,
        unsubscribed, or a custom event), ``occurred_at`` (ISO 8601 with an offset),
        optional ``message_ref``, ``value``, ``properties`` (a JSON object). Imported
        events feed analytics and models but never start, advance or end a sequence,
        nor send anything. Poll ``GET /api/v1/jobs/{job_id}``: counts, the first 100
        row errors, and ``result`` (``events``, ``duplicates``, ``subscribers_created``)."""
        session = get_db()
        with _errors:
            blocks, fmt = _upload()
            job = create_event_import_job(session, current_account_id(), blocks, fmt, utcnow())
        session.commit()
        from tasks.audience import import_events  # the Celery app loads only when first needed

        enqueue_stored(import_events, (job.id,), "event import", "the tick will resume it", job_id=job.id)
        return {"job_id": job.id, "status": job.status, "total": job.total}
