"""Query and answer shapes of the account-wide analytics endpoints."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from analytics.attribution import MODELS, TOUCHES
from web.csv_response import FormatQuerySchema
from web.validators import in_era, text


class PeriodQuerySchema(FormatQuerySchema):
    """An analytics query over the days ``from`` .. ``to`` (its ``start`` and ``end``,
    declared by each query with its own wording), answered as JSON or CSV."""

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise ValidationError("Must not be after `to`.", "from")


class AttributionQuerySchema(PeriodQuerySchema):
    model = fields.String(load_default="last_touch", validate=validate.OneOf(MODELS))
    window_days = fields.Integer(load_default=7, validate=validate.Range(min=1, max=365),
                                 metadata={"description": "Touches this many days before a conversion count."})
    touch = fields.String(load_default="sent", validate=validate.OneOf(TOUCHES),
                          metadata={"description": "`sent`: emails sent; `clicked`: emails clicked (first click)."})
    event = fields.String(load_default=None, validate=text(100),
                          metadata={"description": "Only conversions of this event name; default every sequence "
                                                   "goal event of the account."})
    start = fields.Date(data_key="from", load_default=None, validate=in_era,
                        metadata={"description": "Conversions from this day (UTC), inclusive."})
    end = fields.Date(data_key="to", load_default=None, validate=in_era,
                      metadata={"description": "Conversions up to this day (UTC), inclusive."})


class AttributionRowSchema(Schema):
    sequence_id = fields.Integer()
    step = fields.Integer(allow_none=True, metadata={"description": "The step's position."})
    step_id = fields.Integer(allow_none=True)
    conversions = fields.Float(metadata={"description": "Credited conversions; fractional under `linear`."})
    revenue = fields.Float(metadata={"description": "Attributed revenue, split in whole cents."})


class AttributionTotalsSchema(Schema):
    conversions = fields.Integer()
    revenue = fields.Float()
    attributed_conversions = fields.Integer()
    attributed_revenue = fields.Float(metadata={"description": "Exactly the sum of the rows' revenue."})
    unattributed_conversions = fields.Integer(metadata={"description": "Conversions with no touch in the window."})
    unattributed_revenue = fields.Float()


class AttributionSchema(Schema):
    model = fields.String()
    window_days = fields.Integer()
    touch = fields.String()
    rows = fields.List(fields.Nested(AttributionRowSchema))
    totals = fields.Nested(AttributionTotalsSchema)
    as_of = fields.DateTime(metadata={"description": "When this answer was computed: live for a small account; for "
                                                     "one past 1,000 conversions, the analytics pool's cached answer "
                                                     "(recomputed when a request finds it over a minute old)."})


class AnalysisQuerySchema(FormatQuerySchema):
    """A cached account analysis, as JSON or CSV."""


class ChartQuerySchema(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv", "svg")),
                           metadata={"description": "`csv`: the rows as CSV, with a header line; `svg`: a chart "
                                                    "(`image/svg+xml`) to open in a browser."})


class PendingAnalysisSchema(Schema):
    kind = fields.String()
    status = fields.String(metadata={"description": "`queued` or `computing` (with the last attempt's `error` when "
                                                    "it failed: it has been asked for again)."})
    computed_at = fields.DateTime(allow_none=True)
    error = fields.String(allow_none=True)


class _Cached(Schema):
    kind = fields.String()
    status = fields.String(metadata={"description": "`ready`; `queued` or `computing` while a newer answer is "
                                                    "on its way (the stored one is served meanwhile)."})
    computed_at = fields.DateTime(metadata={"description": "When the analytics pool computed this answer."})


class CohortSchema(Schema):
    cohort = fields.String(metadata={"description": "The signup week's Monday (UTC), YYYY-MM-DD."})
    subscribers = fields.Integer()
    engaged = fields.List(fields.Integer(), metadata={"description": "Per week after signup (0: the signup week), "
                                                                     "subscribers who opened or clicked."})
    shares = fields.List(fields.Float(), metadata={"description": "`engaged` / `subscribers`, 4 decimals."})


class CohortsSchema(_Cached):
    period = fields.String()
    engaged_events = fields.List(fields.String())
    subscribers = fields.Integer()
    cohorts = fields.List(fields.Nested(CohortSchema))


class SegmentSchema(Schema):
    segment = fields.String()
    customers = fields.Integer()
    share = fields.Float(metadata={"description": "Of all customers."})
    recency_days_mean = fields.Float(allow_none=True)
    frequency_mean = fields.Float(allow_none=True)
    monetary_mean = fields.Float(allow_none=True)
    revenue = fields.Float()


class ScoreCellSchema(Schema):
    r = fields.Integer()
    f = fields.Integer()
    m = fields.Integer()
    customers = fields.Integer()


class RfmSchema(_Cached):
    customers = fields.Integer(metadata={"description": "Subscribers with at least one event carrying a value."})
    subscribers = fields.Integer()
    subscribers_without_value = fields.Integer()
    segments = fields.List(fields.Nested(SegmentSchema))
    scores = fields.List(fields.Nested(ScoreCellSchema))
    score_floors = fields.Dict(keys=fields.String(), values=fields.Dict(keys=fields.String(), values=fields.Float()),
                               metadata={"description": "Per measure and score, the value that earns the score "
                                                        "(recency: the most days)."})


class LtvCohortSchema(Schema):
    cohort = fields.String(metadata={"description": "The signup week's Monday (UTC), YYYY-MM-DD."})
    subscribers = fields.Integer()
    customers = fields.Integer()
    revenue = fields.Float(metadata={"description": "Revenue to date."})
    revenue_per_subscriber = fields.Float()
    predicted_revenue = fields.Float(allow_none=True, metadata={"description": "Predicted over the model's horizon."})
    predicted_per_subscriber = fields.Float(allow_none=True)


class LtvSubscriberSchema(Schema):
    subscriber_id = fields.Integer()
    email = fields.String(allow_none=True)
    transactions = fields.Integer()
    revenue = fields.Float()
    predicted_revenue = fields.Float(allow_none=True)


class LtvModelSchema(Schema):
    name = fields.String(metadata={"description": "`bg_nbd+gamma_gamma`"})
    time_unit = fields.String()
    horizon_weeks = fields.Integer()
    fitted_on = fields.Integer()
    unpredicted = fields.Integer(metadata={"description": "Customers whose expectation could not be evaluated "
                                                          "(predicted 0)."})
    params = fields.Dict(keys=fields.String(), values=fields.Float())


class LtvSchema(_Cached):
    model = fields.Nested(LtvModelSchema, allow_none=True,
                          metadata={"description": "Null while there is too little purchase history to fit it."})
    subscribers = fields.Integer()
    customers = fields.Integer()
    revenue = fields.Float()
    revenue_per_subscriber = fields.Float()
    predicted_revenue = fields.Float(allow_none=True)
    cohorts = fields.List(fields.Nested(LtvCohortSchema))
    top_subscribers = fields.List(fields.Nested(LtvSubscriberSchema),
                                  metadata={"description": "The 100 subscribers with the most revenue to date."})
