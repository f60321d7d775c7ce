"""GET /analytics/attribution: conversions and revenue credited to sequence steps."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from analytics.attribution import attribute
from web.analytics.schemas import AttributionQuerySchema, AttributionSchema
from web.auth import SECURITY, account_required, current_account_id
from web.csv_response import csv_response
from web.db import get_db

blp = Blueprint("analytics", __name__, url_prefix="/api/v1/analytics",
                description="Account-wide analytics; each answer also as CSV with `?format=csv`")

CSV_COLUMNS = ("sequence_id", "step", "step_id", "conversions", "revenue")


@blp.route("/attribution")
class Attribution(MethodView):
    @account_required
    @blp.arguments(AttributionQuerySchema, location="query")
    @blp.response(200, AttributionSchema)
    @blp.alt_response(200, success=True, content_type="text/csv", description="The rows as CSV (`format=csv`).")
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any]) -> Any:
        """Per sequence and step: the conversions and revenue credited to its emails
        under ``model`` (last_touch, first_touch, linear), with totals and what no
        email in the window touched (see analytics.attribution)."""
        start = datetime.combine(query["start"], time(), timezone.utc) if query["start"] else None
        end = datetime.combine(query["end"], time(), timezone.utc) + timedelta(days=1) if query["end"] else None
        answer = attribute(get_db(), current_account_id(), query["model"], query["window_days"], query["touch"],
                           start, end, query["event"])
        for row in answer["rows"]:
            row["conversions"] = round(float(row["conversions"]), 6)
        if query["format"] == "csv":
            return csv_response(CSV_COLUMNS, answer["rows"], "attribution.csv")
        return answer
