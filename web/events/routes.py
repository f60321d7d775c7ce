"""Custom events: conversions, exit goals, triggers."""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from models.base import utcnow
from sequencing.intake import UnknownSubscriberError, ingest_event
from web.auth import SECURITY, account_required, current_account_id
from web.db import get_db
from web.events.schemas import EventCreatedSchema, EventCreateSchema
from web.resource import On, map_errors

blp = Blueprint("events", __name__, url_prefix="/api/v1/events", description="Custom events")

_errors = map_errors(On(UnknownSubscriberError, 404, "Subscriber not found.",
                        errors=lambda _exc: {"json": {"subscriber_id": ["Not found."]}}))


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
