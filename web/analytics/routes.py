"""GET /analytics/attribution: conversions and revenue credited to sequence steps;
GET /analytics/cohorts, /rfm and /ltv: the analytics pool's cached account analyses."""
from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from analytics.account_analyses import get_analysis, request_analysis
from analytics.attribution_cache import AttributionQuery, serve
from analytics.charts import cohort_heatmap
from analytics.cohorts import cohort_rows
from models import utcnow
from web.analytics.schemas import (AnalysisQuerySchema, AttributionQuerySchema, AttributionSchema, ChartQuerySchema,
                                   CohortsSchema, LtvSchema, PendingAnalysisSchema, RfmSchema)
from web.auth import SECURITY, account_required, current_account_id
from web.csv_response import csv_response
from web.db import get_db
from web.enqueue import enqueue_stored


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
        question = AttributionQuery(query["model"], query["window_days"], query["touch"], query["start"],
                                    query["end"], query["event"])
        session = get_db()
        served = serve(session, current_account_id(), question, utcnow())
        session.commit()  # the answer stored or asked for again
        if served.ask is not None:
            from tasks.analytics import compute_attribution  # the Celery app loads only when first needed

            enqueue_stored(compute_attribution, (served.ask,), "attribution recompute",
                           "beat's refresh will take it up")
        answer = {**served.answer, "as_of": served.as_of}
        if query["format"] == "csv":
            return csv_response(CSV_COLUMNS, answer["rows"], "attribution.csv")
        return answer


COHORT_COLUMNS = ("cohort", "subscribers", "week", "engaged", "share")
SEGMENT_COLUMNS = ("segment", "customers", "share", "recency_days_mean", "frequency_mean", "monetary_mean", "revenue")
LTV_COLUMNS = ("cohort", "subscribers", "customers", "revenue", "revenue_per_subscriber", "predicted_revenue",
               "predicted_per_subscriber")
_PENDING = {"description": "Not computed yet: the analytics pool has been asked; ask again shortly.",
            "content": {"application/json": {"schema": PendingAnalysisSchema}}}


def _cached(kind: str) -> tuple[dict[str, Any] | None, Response | None]:
    """The stored answer with its ``kind``, ``status`` and ``computed_at``; or, when
    nothing is stored yet, a 202 after asking the analytics pool for one. Nothing
    is computed here."""
    session = get_db()
    account_id = current_account_id()
    row = get_analysis(session, account_id, kind)
    if row is not None and row.result is not None:
        return {**row.result, "kind": kind, "status": row.status, "computed_at": row.computed_at}, None
    if row is None or row.status == "failed":
        error = row.error if row is not None else None
        if request_analysis(session, account_id, kind, utcnow()):
            session.commit()
            from tasks.analytics import compute_account_analysis  # the Celery app loads only when first needed

            enqueue_stored(compute_account_analysis, (account_id, kind), "analysis", "beat's refresh will take it up")
        # Read the row again from the database, not from the session: when another
        # request queued it first (our UPDATE matched nothing), the session's copy is
        # what we loaded (``failed``) with whatever our UPDATE's in-memory sync set
        # (``queued``), while a worker may hold it already (``computing``).
        session.expire_all()
        row = get_analysis(session, account_id, kind)
        assert row is not None
    else:
        error = row.error
    response = jsonify(PendingAnalysisSchema().dump({"kind": kind, "status": row.status, "computed_at": None,
                                                     "error": error}))
    response.status_code = 202
    return None, response


@blp.route("/cohorts")
class Cohorts(MethodView):
    @account_required
    @blp.arguments(ChartQuerySchema, location="query")
    @blp.response(200, CohortsSchema)
    @blp.alt_response(200, success=True, content_type="text/csv", description="`format=csv`: one row per cohort "
                                                                              "and week.")
    @blp.alt_response(200, success=True, content_type="image/svg+xml", description="`format=svg`: a heatmap.")
    @blp.doc(security=SECURITY, responses={202: _PENDING})
    def get(self, query: dict[str, Any]) -> Any:
        """Subscribers by signup week, and the share of each cohort that opened or
        clicked in each later week, as last computed by the analytics pool."""
        answer, pending = _cached("cohorts")
        if answer is None:
            return pending
        if query["format"] == "csv":
            return csv_response(COHORT_COLUMNS, cohort_rows(answer), "cohorts.csv")
        if query["format"] == "svg":
            return Response(cohort_heatmap(answer), mimetype="image/svg+xml")
        return answer


@blp.route("/rfm")
class Rfm(MethodView):
    @account_required
    @blp.arguments(AnalysisQuerySchema, location="query")
    @blp.response(200, RfmSchema)
    @blp.alt_response(200, success=True, content_type="text/csv", description="`format=csv`: one row per segment.")
    @blp.doc(security=SECURITY, responses={202: _PENDING})
    def get(self, query: dict[str, Any]) -> Any:
        """Customers scored 1-5 on recency, frequency and monetary value, and the
        segments they fall in (see analytics.rfm), as last computed by the pool."""
        answer, pending = _cached("rfm")
        if answer is None:
            return pending
        if query["format"] == "csv":
            return csv_response(SEGMENT_COLUMNS, answer["segments"], "rfm.csv")
        return answer


@blp.route("/ltv")
class Ltv(MethodView):
    @account_required
    @blp.arguments(AnalysisQuerySchema, location="query")
    @blp.response(200, LtvSchema)
    @blp.alt_response(200, success=True, content_type="text/csv", description="`format=csv`: one row per cohort.")
    @blp.doc(security=SECURITY, responses={202: _PENDING})
    def get(self, query: dict[str, Any]) -> Any:
        """Revenue to date per cohort and for the top subscribers, and the value
        predicted over the next 52 weeks by BG/NBD + Gamma-Gamma (see analytics.ltv)."""
        answer, pending = _cached("ltv")
        if answer is None:
            return pending
        if query["format"] == "csv":
            return csv_response(LTV_COLUMNS, answer["cohorts"], "ltv.csv")
        return answer
