"""Request and response shapes. Marshmallow checks types and shapes; the meaning
(valid address, IANA zone, tag and attribute limits) is checked once, in
``audience.fields``, so the API and imports agree, and its errors come back as
422s naming the field like marshmallow's own."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from audience.subscribers import SETTABLE_STATUSES
from models.subscriber import SUBSCRIBER_STATUSES
from web.ml.schemas import ScoresSchema
from web.validators import text


class SubscriberCreateSchema(Schema):
    email = fields.String(required=True, metadata={"example": "ada@example.com"})
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    timezone = fields.String(allow_none=True, metadata={"description": "IANA name, e.g. Europe/Berlin"})
    attributes = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), allow_none=True,
                             metadata={"description": "Scalars or lists of scalars"})
    tags = fields.List(fields.String(), allow_none=True)
    topics = fields.List(fields.Raw(), metadata={
        "description": "Keys of the account's topics the subscriber is in (replaces, like tags: others become left)"})




class SubscriberUpdateSchema(SubscriberCreateSchema):
    email = fields.String()
    status = fields.String(validate=validate.OneOf(SETTABLE_STATUSES))


class SubscriberSchema(Schema):
    id = fields.Integer()
    email = fields.String()
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    timezone = fields.String(allow_none=True)
    status = fields.String()
    attributes = fields.Dict()
    tags = fields.List(fields.String())
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class SubscriberTopicSchema(Schema):
    key = fields.String()
    name = fields.String()
    status = fields.String(metadata={"description": "subscribed, or left (on the preference page)"})


class SubscriberWithTopicsSchema(SubscriberSchema):
    topics = fields.List(fields.Nested(SubscriberTopicSchema))


class SubscriberDetailSchema(SubscriberWithTopicsSchema):
    scores = fields.Nested(ScoresSchema, allow_none=True,
                           metadata={"description": "The latest churn risk, engagement and best send hour; "
                                                    "null until the account is scored"})


class SubscriberQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(SUBSCRIBER_STATUSES))
    tag = fields.String(validate=text(64))
    email = fields.String(validate=text(320),
                          metadata={"description": "Part of the address (case-insensitive)"})
    topic = fields.String(validate=text(100), metadata={"description": "A topic's key: its subscribed members"})


class ImportAcceptedSchema(Schema):
    job_id = fields.Integer()
    status = fields.String()
    total = fields.Integer(metadata={"description": "Rows found in the upload"})
