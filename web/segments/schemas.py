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


class SavedSegmentCreateSchema(Schema):
    name = fields.String(required=True, validate=text(200))
    filter = fields.Raw(required=True, metadata=FILTER_DOC)


class SavedSegmentUpdateSchema(Schema):
    name = fields.String(validate=text(200))
    filter = fields.Raw(metadata=FILTER_DOC)


class SavedSegmentSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    filter = fields.Dict()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class SavedSegmentDetailSchema(SavedSegmentSchema):
    count = fields.Integer(metadata={"description": "Members now (active subscribers unless the filter "
                                                    "names a status)"})


class SegmentCountRequestSchema(Schema):
    filter = fields.Raw(required=True, metadata=FILTER_DOC)


class SegmentCountSchema(Schema):
    count = fields.Integer()


class SegmentMembersQuerySchema(FormatQuerySchema):
    pass
