"""The suppression list: addresses this account never sends to."""
from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import Select

from delivery.suppressions import add_suppression, remove_suppression, suppressions_query
from models import Suppression
from models.base import utcnow
from web.auth import SECURITY, account_required, current_account_id
from web.db import get_db
from web.pagination import SQLPage
from web.suppressions.schemas import SuppressionCreateSchema, SuppressionQuerySchema, SuppressionSchema

blp = Blueprint("suppressions", __name__, url_prefix="/api/v1/suppressions", description="Suppression list")


@blp.route("")
class Suppressions(MethodView):
    @account_required
    @blp.arguments(SuppressionQuerySchema, location="query")
    @blp.response(200, SuppressionSchema(many=True))
    @blp.paginate(SQLPage)
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any]) -> Select[Any]:
        """Suppressed addresses newest first, filtered by reason or address (which also
        finds an erased address's entry, shown without the address)."""
        return suppressions_query(current_account_id(), query.get("reason"), query.get("email"),
                                  current_app.config["ESEQ_SETTINGS"].secret_key)

    @account_required
    @blp.arguments(SuppressionCreateSchema)
    @blp.response(201, SuppressionSchema)
    @blp.alt_response(200, schema=SuppressionSchema, description="The address was already suppressed")
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> tuple[Suppression, int]:
        """Suppress an address and end its subscriber's running enrollments.

        Idempotent: an address already on the list answers 200 with its entry."""
        session = get_db()
        row, created = add_suppression(session, current_account_id(), data["email"], data["reason"], utcnow())
        session.commit()
        return row, 201 if created else 200


@blp.route("/<int:suppression_id>")
class SuppressionById(MethodView):
    @account_required
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, suppression_id: int) -> None:
        """Take an address off the list, so sends to an active subscriber may resume.

        This does not resubscribe anyone: an unsubscribed or bounced subscriber keeps
        that status and still gets nothing, and ended enrollments stay ended."""
        session = get_db()
        if not remove_suppression(session, current_account_id(), suppression_id):
            abort(404, message="Suppression not found.")
        session.commit()
