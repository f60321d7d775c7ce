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
