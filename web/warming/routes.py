"""Warming plans: the 30-day ramp of a provider's new IP or domain, its schedule,
today's cap and use, every adjustment with its reason, and a plot."""
from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from models.base import utcnow
from warming import admin
from warming.errors import WarmingError
from web.auth import SECURITY, account_required, current_account_id
from web.db import get_db
from web.resource import On, field_errors, map_errors
from web.warming.schemas import PlanCreateSchema, PlanSchema, PlanUpdateSchema

blp = Blueprint("warming", __name__, url_prefix="/api/v1/warming-plans", description="IP warming plans")


_errors = map_errors(
    On(WarmingError, 422, errors=field_errors("json")),
    On(admin.PlanConflictError, 409, errors=field_errors("json")),
    On(admin.PlanNotFoundError, 404, "Warming plan not found."),
)


@blp.route("")
class Plans(MethodView):
    @account_required
    @blp.response(200, PlanSchema(many=True))
    @blp.doc(security=SECURITY)
    def get(self) -> list[dict[str, Any]]:
        """The account's plans, each as GET /{id} shows it."""
        session, now = get_db(), utcnow()
        return admin.describe_all(session, list(session.scalars(admin.list_plans(current_account_id()))), now)

    @account_required
    @blp.arguments(PlanCreateSchema)
    @blp.response(201, PlanSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Start warming one of the account's providers: from then on every send
        through it obeys the plan's cap."""
        session, now = get_db(), utcnow()
        with _errors:
            row = admin.create_plan(session, current_account_id(), data, now)
        session.commit()
        return admin.describe(session, row, now)


@blp.route("/<int:plan_id>")
class PlanById(MethodView):
    @account_required
    @blp.response(200, PlanSchema)
    @blp.doc(security=SECURITY)
    def get(self, plan_id: int) -> dict[str, Any]:
        """The schedule, today's day, cap, use and reservations by group, the status,
        the daily history and every adjustment with its reason."""
        session = get_db()
        with _errors:
            return admin.describe(session, admin.get_plan(session, current_account_id(), plan_id), utcnow())

    @account_required
    @blp.arguments(PlanUpdateSchema)
    @blp.response(200, PlanSchema)
    @blp.doc(security=SECURITY)
    def patch(self, data: dict[str, Any], plan_id: int) -> dict[str, Any]:
        """Pause or resume, change thresholds or overflow."""
        session, now = get_db(), utcnow()
        with _errors:
            row = admin.update_plan(session, current_account_id(), plan_id, data, now)
        session.commit()
        return admin.describe(session, row, now)

    @account_required
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, plan_id: int) -> None:
        """Stop warming: the provider sends without a cap from now on."""
        session = get_db()
        with _errors:
            admin.delete_plan(session, current_account_id(), plan_id)
        session.commit()


@blp.route("/<int:plan_id>/plot.svg")
class PlanPlot(MethodView):
    @account_required
    @blp.doc(security=SECURITY, responses={200: {"description": "Planned vs actual daily volume, bounce and "
                                                                "complaint rates", "content": {"image/svg+xml": {}}}})
    def get(self, plan_id: int) -> Response:
        """Planned vs actual volume and bounce/complaint rates, as an SVG image."""
        session = get_db()
        with _errors:
            svg = admin.plot(session, admin.get_plan(session, current_account_id(), plan_id))
        return Response(svg, mimetype="image/svg+xml")
