"""GET /email-sequences/{id}/holdout: the sequence's conversions, treated against
held out (``settings.holdout_percent``), and the lift between them."""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from analytics.holdout import DEFAULT_CONFIDENCE, holdout_report
from analytics.sequence_cache import serve
from models import utcnow
from sequencing import lifecycle
from web.auth import SECURITY, account_required, current_account_id
from web.csv_response import FormatQuerySchema, csv_response
from web.db import get_db
from web.enqueue import enqueue_stored
from web.sequences.domain_errors import domain_errors

blp = Blueprint("email_sequence_holdout", __name__, url_prefix="/api/v1/email-sequences",
                description="A sequence's lift over the enrollments held out of its emails")


class HoldoutQuerySchema(FormatQuerySchema):
    confidence = fields.Float(load_default=DEFAULT_CONFIDENCE, validate=validate.Range(min=0.8, max=0.999),
                              metadata={"description": "Of the lift's intervals, 0.8-0.999."})


class HoldoutGroupSchema(Schema):
    group = fields.String(metadata={"description": "treated | held_out"})
    enrollments = fields.Integer()
    converted = fields.Integer(metadata={"description": "Enrollments followed by the goal event within its window, "
                                                        "or that exited by an exit event."})
    rate = fields.Float(allow_none=True)


class HoldoutSchema(Schema):
    sequence_id = fields.Integer()
    holdout_percent = fields.Float(metadata={"description": "The current setting (enrollments keep the draw they got)."})
    goal = fields.Dict(allow_none=True)
    exit_events = fields.List(fields.String())
    status = fields.String(metadata={"description": "ok | insufficient_data (a group under min_per_group "
                                                    "enrollments) | no_goal (neither a goal nor exit events)"})
    method = fields.String()
    confidence = fields.Float()
    min_per_group = fields.Integer()
    groups = fields.List(fields.Nested(HoldoutGroupSchema))
    absolute_lift = fields.Float(allow_none=True, metadata={"description": "treated rate minus held-out rate."})
    absolute_lift_interval = fields.List(fields.Float(), allow_none=True,
                                         metadata={"description": "Newcombe's hybrid score interval."})
    relative_lift = fields.Float(allow_none=True, metadata={"description": "absolute_lift over the held-out rate."})
    relative_lift_interval = fields.List(fields.Float(), allow_none=True)
    as_of = fields.DateTime(metadata={"description": "Every enrollment and event before it is counted: the request's "
                                                     "time for a sequence of up to 10,000 enrollments, counted live; "
                                                     "for a larger one, when the analytics pool last counted it "
                                                     "(asked again once a minute old)."})


HOLDOUT_COLUMNS = ("group", "enrollments", "converted", "rate", "status", "absolute_lift", "absolute_lift_low",
                   "absolute_lift_high", "relative_lift", "relative_lift_low", "relative_lift_high")


def _holdout_csv(answer: dict[str, Any]) -> Any:
    """One row per group; the lift and its intervals (two columns each) on every row."""
    low, high = answer["absolute_lift_interval"] or (None, None)
    rel_low, rel_high = answer["relative_lift_interval"] or (None, None)
    shared = {"status": answer["status"], "absolute_lift": answer["absolute_lift"], "absolute_lift_low": low,
              "absolute_lift_high": high, "relative_lift": answer["relative_lift"], "relative_lift_low": rel_low,
              "relative_lift_high": rel_high}
    return csv_response(HOLDOUT_COLUMNS, [{**group, **shared} for group in answer["groups"]],
                        f"sequence-{answer['sequence_id']}-holdout.csv")


@blp.route("/<int:sequence_id>/holdout")
class Holdout(MethodView):
    @account_required
    @blp.arguments(HoldoutQuerySchema, location="query")
    @blp.response(200, HoldoutSchema)
    @blp.alt_response(200, success=True, content_type="text/csv",
                      description="`format=csv`: one row per group, the lift on each.")
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any], sequence_id: int) -> Any:
        """Conversions of treated and held-out enrollments (``settings.holdout_percent``)
        and the sequence's lift: absolute with Newcombe's interval, relative with
        Katz's (see analytics.holdout)."""
        session = get_db()
        with domain_errors:
            sequence = lifecycle.get_sequence(session, current_account_id(), sequence_id)
        served = serve(session, sequence, "holdout", utcnow())
        answer = {**holdout_report(session, sequence, confidence=query["confidence"], counts=served.counts),
                  "as_of": served.as_of}
        session.commit()  # the counts stored or asked for
        if served.ask:
            from tasks.analytics import compute_sequence_analysis  # the Celery app loads only when first needed

            enqueue_stored(compute_sequence_analysis, (sequence.id, "holdout"), "holdout recount",
                           "beat's refresh will take it up")
        if query["format"] == "csv":
            return _holdout_csv(HoldoutSchema().dump(answer))
        return answer
