"""Broadcasts: one-off emails to a segment or a topic, with an optional subject
test; scheduled through the pre-flight check, sent by beat (broadcasts.sending)."""
from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import Select

from broadcasts import lifecycle
from broadcasts.report import counts
from content.preflight import Spamd
from models import Broadcast
from models.base import utcnow
from sequencing.errors import InvalidInputError, NotFoundError, StateConflictError
from web.auth import SECURITY, account_required, current_account_id
from web.broadcasts.schemas import BroadcastDetailSchema, BroadcastInSchema, BroadcastSchema, OverrideSchema
from web.db import get_db
from web.pagination import SQLPage
from web.resource import Errors, On, errors_attribute, map_errors, newest_owned

blp = Blueprint("broadcasts", __name__, url_prefix="/api/v1/broadcasts", description="One-off emails to an audience")


def _preflight_errors(exc: lifecycle.BroadcastPreflightError) -> Errors:
    """Each failing version (``content``, ``variants.B``) with its reasons, the
    sender's problems, and the whole report as for a sequence."""
    report = exc.report
    failing = {("variants." + e["variant"]) if e["variant"] else "content": e["reasons"]
               for e in report.emails if not e["passed"]}
    return {"preflight": {**failing, **({"sender": report.problems} if report.problems else {})},
            "preflight_report": report.as_dict()}


# Not found -> 404; wrong state, and a failing pre-flight (the brief's "409 with the report") -> 409.
_errors = map_errors(
    On(NotFoundError, 404),
    On(lifecycle.BroadcastPreflightError, 409, errors=_preflight_errors),
    On(StateConflictError, 409),
    On(InvalidInputError, 422, errors=errors_attribute("json")),
)


def _detail(row: Broadcast) -> dict[str, Any]:
    columns = {column.key: getattr(row, column.key) for column in Broadcast.__table__.columns}
    return {**columns, "counts": counts(get_db(), row)}


@blp.route("")
class Broadcasts(MethodView):
    @account_required
    @blp.arguments(BroadcastInSchema)
    @blp.response(201, BroadcastSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> Broadcast:
        """Create a draft (nothing is sent before ``/schedule``)."""
        session = get_db()
        with _errors:
            row = lifecycle.create(session, current_account_id(), data, utcnow())
        session.commit()
        return row

    @account_required
    @blp.response(200, BroadcastSchema(many=True))
    @blp.paginate(SQLPage)
    @blp.doc(security=SECURITY)
    def get(self) -> Select[Any]:
        """The account's broadcasts, newest first."""
        return newest_owned(Broadcast)


@blp.route("/<int:broadcast_id>")
class BroadcastById(MethodView):
    @account_required
    @blp.response(200, BroadcastDetailSchema)
    @blp.doc(security=SECURITY)
    def get(self, broadcast_id: int) -> dict[str, Any]:
        """Status, audience size, counts per variant and the winner."""
        with _errors:
            return _detail(lifecycle.get(get_db(), current_account_id(), broadcast_id))

    @account_required
    @blp.arguments(BroadcastInSchema)
    @blp.response(200, BroadcastSchema)
    @blp.doc(security=SECURITY)
    def patch(self, data: dict[str, Any], broadcast_id: int) -> Broadcast:
        """Change a draft (409 once scheduled)."""
        session = get_db()
        with _errors:
            row = lifecycle.update_draft(session, current_account_id(), broadcast_id, data, utcnow())
        session.commit()
        return row


@blp.route("/<int:broadcast_id>/schedule")
class Schedule(MethodView):
    @account_required
    @blp.arguments(OverrideSchema)
    @blp.response(200, BroadcastSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any], broadcast_id: int) -> Broadcast:
        """Send at ``send_at`` (or now). Its content must pass the pre-flight check,
        as a sequence's on activation (409 with the report), unless
        ``override_preflight`` is true."""
        session, settings = get_db(), current_app.config["ESEQ_SETTINGS"]
        with _errors:
            row = lifecycle.schedule(session, current_account_id(), broadcast_id, utcnow(), settings.dkim_domain,
                                     Spamd(settings.spamd_host, settings.spamd_port), data["override_preflight"])
        session.commit()
        return row


@blp.route("/<int:broadcast_id>/cancel")
class Cancel(MethodView):
    @account_required
    @blp.response(200, BroadcastSchema)
    @blp.doc(security=SECURITY)
    def post(self, broadcast_id: int) -> Broadcast:
        """Stop it: its messages not yet handed to a send worker are never sent."""
        session = get_db()
        with _errors:
            row = lifecycle.cancel(session, current_account_id(), broadcast_id, utcnow())
        session.commit()
        return row
