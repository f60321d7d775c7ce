from __future__ import annotations

from marshmallow import Schema, fields, validate

from warming.ramp import STATUSES
from web.validators import ID_RANGE, in_era


class PlanCreateSchema(Schema):
    provider_id = fields.Integer(strict=True, required=True, validate=ID_RANGE)
    start_date = fields.Date(validate=in_era, metadata={"description": "Day 1 of the plan (default: today in the plan's timezone)."})
    days = fields.Integer(strict=True, metadata={"description": "Length of the ramp (default 30)."})
    start_volume = fields.Integer(strict=True, metadata={"description": "Day 1's volume (default 50)."})
    target_volume = fields.Integer(strict=True, metadata={"description": "The last day's volume (default 3000)."})
    curve = fields.String(metadata={"description": "geometric (default), linear or custom."})
    schedule = fields.List(fields.Integer(strict=True), metadata={"description": "Day-by-day volumes of a custom curve."})
    thresholds = fields.Dict(metadata={"description": "{bounce|complaint|deferral: {hold, step_back, pause}, "
                                                      "min_sample}: rates as fractions."})
    shares = fields.Dict(metadata={"description": "Each mailbox-provider group's share of the day: gmail, yahoo, "
                                                  "microsoft, other, summing to 1."})
    sending_hours = fields.List(fields.Integer(strict=True), metadata={"description": "[start, end) local hours."})
    timezone = fields.String(metadata={"description": "IANA timezone of the plan's days and hours (default UTC)."})
    allow_overflow = fields.Boolean(metadata={"description": "Let mail over the cap go to other providers."})


class PlanUpdateSchema(Schema):
    status = fields.String(validate=validate.OneOf(("paused", "warming")),
                           metadata={"description": "paused stops the plan's sends; warming resumes it a level lower."})
    thresholds = fields.Dict()
    allow_overflow = fields.Boolean()


class GroupTodaySchema(Schema):
    level = fields.Integer()
    status = fields.String(validate=validate.OneOf(STATUSES))
    cap = fields.Integer(allow_none=True)
    allowance_now = fields.Integer(allow_none=True)
    reserved = fields.Integer()
    used = fields.Integer()


class TodaySchema(Schema):
    cap = fields.Integer(allow_none=True, metadata={"description": "null once warming is completed."})
    used = fields.Integer()
    reserved = fields.Integer()
    groups = fields.Dict(keys=fields.String(), values=fields.Nested(GroupTodaySchema))


class PlanSchema(Schema):
    id = fields.Integer()
    provider_id = fields.Integer()
    start_date = fields.Date()
    status = fields.String()
    allow_overflow = fields.Boolean()
    settings = fields.Dict()
    day = fields.Integer(metadata={"description": "Today's day number (1 = start date)."})
    today = fields.Nested(TodaySchema)
    schedule = fields.List(fields.Dict())
    history = fields.List(fields.Dict())
    adjustments = fields.List(fields.Dict())
    created_at = fields.DateTime()
