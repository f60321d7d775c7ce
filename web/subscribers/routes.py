"""``/api/v1/subscribers``: create, list, read, change, delete, and bulk import.

Views parse, call one ``audience`` function, commit, serialize. An import is
stored as a job and processed by the ``audience.import_subscribers`` task, which
is enqueued only after the job's row is committed (a worker must find it).
"""
from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import Select

from audience import subscribers as audience
from audience import topics
from audience.errors import (
    DuplicateSubscriberError,
    ImportPayloadError,
    ImportTooLargeError,
    InvalidSubscriberError,
    SubscriberNotFoundError,
)
from audience.erasure import erase_subscriber
from audience.export import export_subscriber
from audience.imports import create_import_job
from core.errors import InvalidFieldError
from audience.payloads import MAX_BYTES
from core.address_hash import erasure_key
from delivery.unsubscribe import unsubscribe_subscriber
from ml.scoring import as_public, scores_of
from models import Subscriber, utcnow
from sequencing import triggers
from web.auth import SECURITY, account_required, current_account_id
from web.db import get_db
from web.enqueue import enqueue_stored
from web.json_input import raw_body
from web.pagination import SQLPage
from web.resource import On, errors_attribute, field_errors, map_errors
from web.subscribers.schemas import (
    ImportAcceptedSchema,
    SubscriberCreateSchema,
    SubscriberDetailSchema,
    SubscriberQuerySchema,
    SubscriberSchema,
    SubscriberUpdateSchema,
    SubscriberWithTopicsSchema,
)


blp = Blueprint("subscribers", __name__, url_prefix="/api/v1/subscribers", description="Subscribers and imports")

CSV_TYPES = ("text/csv", "application/csv", "application/vnd.ms-excel")
IMPORT_DOC = {
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
        "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}},
    },
}

# Not found -> 404, duplicate -> 409, invalid -> 422 naming each field, an oversized
# import -> 413, an unusable one -> 422. ImportTooLargeError is an ImportPayloadError,
# so it comes first.
_errors = map_errors(
    On(SubscriberNotFoundError, 404),
    On(DuplicateSubscriberError, 409, errors=field_errors("json", "email")),
    On(InvalidSubscriberError, 422, errors=errors_attribute("json")),
    On(InvalidFieldError, 422, errors=field_errors("json")),
    On(ImportTooLargeError, 413, errors=field_errors("body")),
    On(ImportPayloadError, 422, errors=field_errors("body")),
)


@blp.route("")
class Subscribers(MethodView):
    @account_required
    @blp.arguments(SubscriberCreateSchema)
    @blp.response(201, SubscriberWithTopicsSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Add an active subscriber, in the ``topics`` named; 409 if the account already has the address."""
        session = get_db()
        keys = data.pop("topics", None)
        with _errors:
            subscriber = audience.create_subscriber(session, current_account_id(), data, utcnow())
            if keys is not None:
                topics.set_topics(session, current_account_id(), subscriber.id, keys, utcnow())
        triggers.fire(session, current_account_id(), subscriber.id, "subscriber_created", utcnow())
        triggers.fire_for_new_tags(session, current_account_id(), subscriber.id, [], subscriber.tags, utcnow())
        session.commit()
        return _with_topics(subscriber)

    @account_required
    @blp.arguments(SubscriberQuerySchema, location="query")
    @blp.response(200, SubscriberSchema(many=True))
    @blp.paginate(SQLPage)
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any]) -> Select[Any]:
        """The account's subscribers, newest first; filter by status, tag, or part of the email."""
        return audience.list_subscribers(get_db(), current_account_id(), **query)


@blp.route("/<int:subscriber_id>")
class SubscriberById(MethodView):
    @account_required
    @blp.response(200, SubscriberDetailSchema)
    @blp.doc(security=SECURITY)
    def get(self, subscriber_id: int) -> dict[str, Any]:
        """One subscriber, with their latest ``scores`` (null until the account is scored)."""
        session = get_db()
        with _errors:
            subscriber = audience.get_subscriber(session, current_account_id(), subscriber_id)
        scores = scores_of(session, current_account_id(), [subscriber.id]).get(subscriber.id)
        return _with_topics(subscriber) | {"scores": as_public(scores)}

    @account_required
    @blp.arguments(SubscriberUpdateSchema)
    @blp.response(200, SubscriberWithTopicsSchema)
    @blp.doc(security=SECURITY)
    def patch(self, data: dict[str, Any], subscriber_id: int) -> dict[str, Any]:
        """Change the given fields: ``attributes`` merge (null removes a key), ``tags`` and ``topics`` replace."""
        session = get_db()
        keys = data.pop("topics", None)
        with _errors:
            tags_before = list(audience.get_subscriber(session, current_account_id(), subscriber_id).tags or [])
            subscriber = audience.update_subscriber(session, current_account_id(), subscriber_id, data, utcnow())
            if keys is not None:
                topics.set_topics(session, current_account_id(), subscriber.id, keys, utcnow())
        triggers.fire_for_new_tags(session, current_account_id(), subscriber.id, tags_before, subscriber.tags, utcnow())
        session.commit()
        return _with_topics(subscriber)

    @account_required
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, subscriber_id: int) -> None:
        """Delete the subscriber with their enrollments and message history, and scrub
        their address from provider events, webhook calls and event batches. A
        suppression of the address is kept as a keyed hash, without the address."""
        _erase(subscriber_id, suppress=False)


def _erase(subscriber_id: int, suppress: bool) -> None:
    session = get_db()
    with _errors:
        erase_subscriber(session, current_account_id(), subscriber_id, _erasure_key(), utcnow(), suppress)
    session.commit()


def _erasure_key() -> bytes:
    return erasure_key(current_app.config["ESEQ_SETTINGS"].secret_key)


@blp.route("/<int:subscriber_id>/erase")
class SubscriberErase(MethodView):
    @account_required
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def post(self, subscriber_id: int) -> None:
        """Erase the person (a right-to-erasure request): as DELETE, and the address
        stays suppressed, by its keyed hash, if it ever comes back."""
        _erase(subscriber_id, suppress=True)


@blp.route("/<int:subscriber_id>/unsubscribe")
class SubscriberUnsubscribe(MethodView):
    @account_required
    @blp.response(200, SubscriberWithTopicsSchema)
    @blp.doc(security=SECURITY)
    def post(self, subscriber_id: int) -> dict[str, Any]:
        """Unsubscribe the person as their own unsubscribe link would: status
        ``unsubscribed`` (a bounced or complained one keeps it), the address
        suppressed, every running enrollment ended, an ``unsubscribed`` event."""
        session = get_db()
        with _errors:
            subscriber = unsubscribe_subscriber(session, current_account_id(), subscriber_id, utcnow(), via="api")
        session.commit()
        return _with_topics(subscriber)


@blp.route("/<int:subscriber_id>/export")
class SubscriberExport(MethodView):
    @account_required
    @blp.response(200)
    @blp.doc(security=SECURITY)
    def get(self, subscriber_id: int) -> dict[str, Any]:
        """Everything held about the person, as one JSON document: profile (attributes,
        tags, topics), events, messages, enrollments, scores, suppressions of the
        address, and the webhook calls, provider events and event batches naming them."""
        with _errors:
            return export_subscriber(get_db(), current_account_id(), subscriber_id, _erasure_key())


def _with_topics(subscriber: Subscriber) -> dict[str, Any]:
    """The subscriber's fields and their topics, each with its status."""
    rows = topics.subscriber_topics(get_db(), current_account_id(), subscriber.id)
    return {name: getattr(subscriber, name) for name in SubscriberSchema().fields} | {
        "topics": [{"key": r["key"], "name": r["name"], "status": r["status"]} for r in rows]}


def _read_upload() -> tuple[bytes, str]:
    """The upload's bytes and format: a multipart ``file`` field (``.json`` name or
    JSON part type means JSON, else CSV), or a raw ``text/csv`` / JSON body."""
    if request.content_length is not None and request.content_length > MAX_BYTES + 64 * 1024:
        raise ImportTooLargeError(f"The import is larger than {MAX_BYTES // (1024 * 1024)} MB; split it.")
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            abort(422, message="Send the import in the multipart field 'file'.",
                  errors={"files": {"file": ["Missing data for required field."]}})
        is_json = (upload.filename or "").lower().endswith(".json") or upload.mimetype == "application/json"
        return upload.stream.read(MAX_BYTES + 1), "json" if is_json else "csv"
    if request.mimetype == "application/json":
        return request.get_data(cache=False), "json"
    if request.mimetype in CSV_TYPES:
        return request.get_data(cache=False), "csv"
    abort(415, message="Send the import as text/csv, application/json (a list of objects), "
                       "or multipart/form-data with a 'file' field.")
    raise AssertionError("unreachable")


@blp.route("/import")
class Import(MethodView):
    @raw_body  # rows are checked one by one by the import job
    @account_required
    @blp.response(202, ImportAcceptedSchema)
    @blp.doc(security=SECURITY, requestBody=IMPORT_DOC)
    def post(self) -> dict[str, Any]:
        """Import up to 500,000 subscribers (50 MB) from CSV or a JSON list; poll
        ``GET /api/v1/jobs/{job_id}`` for progress, counts and per-row errors."""
        session = get_db()
        with _errors:
            payload, fmt = _read_upload()
            job = create_import_job(session, current_account_id(), payload, fmt, utcnow())
        session.commit()
        from tasks.audience import import_subscribers  # the Celery app loads only when first needed

        enqueue_stored(import_subscribers, (job.id,), "subscriber import", "the tick will resume it", job_id=job.id)
        return {"job_id": job.id, "status": job.status, "total": job.total}
