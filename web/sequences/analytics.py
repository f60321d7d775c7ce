"""GET /email-sequences/{id}/analytics (from the rollups, with ``as_of``),
GET /email-sequences/{id}/experiments (the decisions on those counts) and
GET /email-sequences/{id}/funnel."""
from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy.orm import Session

from analytics.charts import funnel_bars
from analytics.experiment_results import catch_up, experiment_results
from analytics.funnel import step_funnel
from analytics.sequence_stats import step_counts
from models import Sequence, utcnow
from sequencing import lifecycle
from web.analytics.schemas import ChartQuerySchema, PeriodQuerySchema
from web.auth import SECURITY, account_required, current_account_id
from web.csv_response import FormatQuerySchema, csv_response
from web.db import get_db
from web.enqueue import enqueue_stored
from web.sequences.domain_errors import domain_errors

blp = Blueprint("email_sequence_analytics", __name__, url_prefix="/api/v1/email-sequences",
                description="A sequence's results, from the analytics pool's rollups")


class AnalyticsQuerySchema(PeriodQuerySchema):
    start = fields.Date(data_key="from", load_default=None, metadata={"description": "First day (UTC), inclusive."})
    end = fields.Date(data_key="to", load_default=None, metadata={"description": "Last day (UTC), inclusive."})
    interval = fields.String(load_default=None, validate=validate.OneOf(["day"]),
                             metadata={"description": "`day` adds `series`: the rows of each day "
                                                      "(in CSV, one row per day and step, with `day`)."})


class StepCountsSchema(Schema):
    step_id = fields.Integer()
    position = fields.Integer()
    step = fields.Integer(metadata={"description": "The step's position."})
    variant = fields.String(allow_none=True)
    sent = fields.Integer()
    delivered = fields.Integer()
    opened = fields.Integer(metadata={"description": "Messages opened at least once."})
    clicked = fields.Integer(metadata={"description": "Messages clicked at least once."})
    bounced = fields.Integer()
    complained = fields.Integer()
    unsubscribed = fields.Integer()
    opened_total = fields.Integer(metadata={"description": "Opens, every one."})
    clicked_total = fields.Integer(metadata={"description": "Clicks, every one."})
    converted = fields.Integer(metadata={"description": "Messages that led to at least one goal event."})
    conversions = fields.Integer(metadata={"description": "Goal events attributed to the step's messages."})
    revenue = fields.Float(metadata={"description": "The attributed goal events' values."})


class DayCountsSchema(Schema):
    day = fields.Date()
    steps = fields.List(fields.Nested(StepCountsSchema))


class AnalyticsSchema(Schema):
    sequence_id = fields.Integer()
    as_of = fields.DateTime(allow_none=True, metadata={"description": "Every event recorded before it is counted."})
    steps = fields.List(fields.Nested(StepCountsSchema))
    series = fields.List(fields.Nested(DayCountsSchema))


STEP_COLUMNS = tuple(StepCountsSchema().fields)


def _analytics_csv(sequence_id: int, answer: dict[str, Any]) -> Any:
    """The step rows, or with ``series`` each day's, led by its ``day``."""
    if "series" in answer:
        rows = [{"day": day["day"], **row} for day in answer["series"] for row in day["steps"]]
        return csv_response(("day", *STEP_COLUMNS), rows, f"sequence-{sequence_id}-analytics.csv")
    return csv_response(STEP_COLUMNS, answer["steps"], f"sequence-{sequence_id}-analytics.csv")


@blp.route("/<int:sequence_id>/analytics")
class Analytics(MethodView):
    @account_required
    @blp.arguments(AnalyticsQuerySchema, location="query")
    @blp.response(200, AnalyticsSchema)
    @blp.alt_response(200, success=True, content_type="text/csv",
                      description="`format=csv`: one row per step and variant (per day with `interval=day`).")
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any], sequence_id: int) -> Any:
        """Per email step and variant: messages sent, delivered, opened, clicked,
        bounced, complained about and unsubscribed from (each message once per name),
        opens and clicks in total, conversions and revenue; ``as_of`` says how fresh."""
        session = get_db()
        with domain_errors:
            sequence = lifecycle.get_sequence(session, current_account_id(), sequence_id)
        catch_up(session, sequence.account_id, utcnow())
        answer = step_counts(session, sequence, query["start"], query["end"], by_day=query["interval"] == "day")
        if query["format"] == "csv":
            return _analytics_csv(sequence.id, AnalyticsSchema().dump(answer))
        return answer


class ExperimentVariantSchema(Schema):
    name = fields.String(metadata={"description": "The variant's name; `holdout` is the experiment's \"no email\" arm "
                                                  "(`holdout_percent`), listed last and never a winner."})
    sent = fields.Integer(metadata={"description": "Messages sent; for `holdout`, the visits held (as `held`)."})
    held = fields.Integer(allow_none=True, metadata={"description": "`holdout` only: visits of the step drawn into "
                                                                    "the arm and sent nothing; null for variants."})
    successes = fields.Integer(allow_none=True, metadata={
        "description": "Messages with at least one of the experiment's metric; for `holdout` with `converted`, held "
                       "visits followed by the goal event within `within_days`, and null for `opened`/`clicked` "
                       "(nothing was sent to open)."})
    rate = fields.Float(allow_none=True)
    lift = fields.Float(allow_none=True, metadata={"description": "Relative to the first variant (the control)."})
    difference = fields.Float(allow_none=True, metadata={"description": "rate minus the control's rate."})
    confidence_interval = fields.List(fields.Float(), allow_none=True)
    p_value_always_valid = fields.Float(allow_none=True)
    difference_over_holdout = fields.Float(allow_none=True, metadata={
        "description": "With a holdout arm and the `converted` metric: rate minus the holdout's rate."})
    lift_over_holdout = fields.Float(allow_none=True, metadata={
        "description": "rate over the holdout's rate, minus 1 (null while the holdout has no conversion)."})
    confidence_interval_over_holdout = fields.List(fields.Float(), allow_none=True, metadata={
        "description": "Always-valid interval of difference_over_holdout (at alpha / variants)."})


class ExperimentSchema(Schema):
    step = fields.Integer(metadata={"description": "The step's position."})
    metric = fields.String()
    status = fields.String(metadata={"description": "running | decided | no_difference"})
    winner = fields.String(allow_none=True)
    method = fields.String()
    confidence = fields.Float()
    min_per_variant = fields.Integer()
    auto_promote = fields.Boolean()
    sends_needed_estimate = fields.Integer(allow_none=True,
                                           metadata={"description": "Sends per variant at which the leader would win "
                                                                    "if the rates held."})
    as_of = fields.DateTime(allow_none=True, metadata={"description": "Every event recorded before it is counted."})
    holdout_as_of = fields.DateTime(allow_none=True, metadata={
        "description": "With a `holdout` arm: when its counts were read (live up to 10,000 held visits; above, "
                       "the analytics pool's last count, asked again once a minute old)."})
    variants = fields.List(fields.Nested(ExperimentVariantSchema))


EXPERIMENT_COLUMNS = ("step", "metric", "status", "winner", "variant", "sent", "held", "successes", "rate", "lift",
                      "difference", "confidence_interval_low", "confidence_interval_high", "p_value_always_valid",
                      "difference_over_holdout", "lift_over_holdout")


def _experiments_csv(sequence_id: int, experiments: list[dict[str, Any]]) -> Any:
    """One row per variant; its ``name`` is ``variant`` and its interval two columns."""
    rows = []
    for experiment in experiments:
        for variant in experiment["variants"]:
            low, high = variant.get("confidence_interval") or (None, None)
            rows.append({**{key: experiment[key] for key in ("step", "metric", "status", "winner")}, **variant,
                         "variant": variant["name"], "confidence_interval_low": low,
                         "confidence_interval_high": high})
    return csv_response(EXPERIMENT_COLUMNS, rows, f"sequence-{sequence_id}-experiments.csv")


def read_experiments(session: Session, sequence: Sequence) -> list[dict[str, Any]]:
    """The sequence's experiments as the API and the console show them: after the
    request's catch-up fold, a decision first reached by this read stored (it is
    final once given out), and the analytics pool asked to recount the holdout
    arms when they are too many to count here."""
    catch_up(session, sequence.account_id, utcnow())
    results, ask = experiment_results(session, sequence, utcnow())
    session.commit()
    if ask:
        from tasks.analytics import compute_sequence_analysis  # the Celery app loads only when first needed

        enqueue_stored(compute_sequence_analysis, (sequence.id, "experiment_arms"), "experiment arms recount",
                       "beat's refresh will take it up")
    return results


@blp.route("/<int:sequence_id>/experiments")
class Experiments(MethodView):
    @account_required
    @blp.arguments(FormatQuerySchema, location="query")
    @blp.response(200, ExperimentSchema(many=True))
    @blp.alt_response(200, success=True, content_type="text/csv",
                      description="`format=csv`: one row per variant, with its experiment's step, metric, "
                                  "status and winner.")
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any], sequence_id: int) -> Any:
        """Per email step with an ``experiment``: its variants' sends and successes
        from the rollups and the decision on them (see analytics.experiments)."""
        session = get_db()
        with domain_errors:
            sequence = lifecycle.get_sequence(session, current_account_id(), sequence_id)
        results = read_experiments(session, sequence)
        if query["format"] == "csv":
            return _experiments_csv(sequence.id, ExperimentSchema(many=True).dump(results))
        return results


class FunnelStepSchema(Schema):
    step_id = fields.Integer()
    step = fields.Integer(metadata={"description": "The step's position."})
    type = fields.String()
    entered = fields.Integer(metadata={"description": "Entries into the step: an enrollment that comes back by a"
                                                      " goto counts once per visit."})
    passed = fields.Integer(metadata={"description": "Went on from the step (to the next one or by a branch)."})
    exited = fields.Integer(metadata={"description": "exited_goal + exited_condition"})
    exited_goal = fields.Integer()
    exited_condition = fields.Integer(metadata={"description": "A condition, an exit step, the subscriber leaving."})
    failed = fields.Integer()
    waiting = fields.Integer(metadata={"description": "Active or paused at this step now."})
    exited_unsubscribed = fields.Integer(metadata={
        "description": "Of exited_condition: the subscriber unsubscribed, bounced, complained or was erased."})


class FunnelSchema(Schema):
    sequence_id = fields.Integer()
    steps = fields.List(fields.Nested(FunnelStepSchema))


@blp.route("/<int:sequence_id>/funnel")
class Funnel(MethodView):
    @account_required
    @blp.arguments(ChartQuerySchema, location="query")
    @blp.response(200, FunnelSchema)
    @blp.alt_response(200, success=True, content_type="text/csv", description="`format=csv`: one row per step.")
    @blp.alt_response(200, success=True, content_type="image/svg+xml", description="`format=svg`: bars per step.")
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any], sequence_id: int) -> Any:
        """Per step: enrollments that entered it, passed it, left at it and wait at it
        now, from the step transitions the engine records (see analytics.funnel):
        exact as of the request, gotos and branches included."""
        session = get_db()
        with domain_errors:
            sequence = lifecycle.get_sequence(session, current_account_id(), sequence_id)
        answer = {"sequence_id": sequence.id, "steps": step_funnel(session, sequence)}
        if query["format"] == "csv":
            return csv_response(tuple(FunnelStepSchema().fields), FunnelSchema().dump(answer)["steps"],
                                f"sequence-{sequence.id}-funnel.csv")
        if query["format"] == "svg":
            return Response(funnel_bars(FunnelSchema().dump(answer)["steps"], f"Funnel: {sequence.name}"),
                            mimetype="image/svg+xml")
        return answer
