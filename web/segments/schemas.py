"""Request and response shapes of segments. Marshmallow checks the envelope; the
filter itself is checked once, in ``audience.segment_grammar``, whose errors come
back as 422s naming the path inside it (``filter.all.2.op``)."""
from __future__ import annotations

from marshmallow import Schema, fields

from web.csv_response import FormatQuerySchema
from web.validators import text

FILTER_DOC = {"description": "A filter: `{\"all\": [...]}`, `{\"any\": [...]}`, `{\"not\": {...}}` over leaves "
                             "(attribute, tag, event, opened_within_days, clicked_within_days, score, field, "
                             "sequence, topic); see docs/segments.md",
              "example": {"all": [{"attribute": "plan", "op": "eq", "value": "pro"},
                                  {"clicked_within_days": 30}, {"tag": "vip"}]}}


class SegmentCreateSchema(Schema):
    name = fields.String(required=True, validate=text(200))
    filter = fields.Raw(required=True, metadata=FILTER_DOC)


class SegmentUpdateSchema(Schema):
    name = fields.String(validate=text(200))
    filter = fields.Raw(metadata=FILTER_DOC)


class SegmentSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    filter = fields.Dict()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class SegmentDetailSchema(SegmentSchema):
    count = fields.Integer(metadata={"description": "Members now (active subscribers unless the filter "
                                                    "names a status)"})


class CountRequestSchema(Schema):
    filter = fields.Raw(required=True, metadata=FILTER_DOC)


class CountSchema(Schema):
    count = fields.Integer()


class MembersQuerySchema(FormatQuerySchema):
    pass
