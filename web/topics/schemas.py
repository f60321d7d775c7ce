"""Request and response shapes of topics. A key's form (lower case, digits, - and
_) is checked once, in audience.topics, for the API, sequences and forms alike."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from web.validators import ID_RANGE, text


class TopicCreateSchema(Schema):
    key = fields.String(required=True, validate=text(100), metadata={"example": "newsletter"})
    name = fields.String(required=True, validate=text(200), metadata={"example": "The monthly newsletter"})
    description = fields.String(allow_none=True, validate=text(2000, min_len=0))


class TopicUpdateSchema(Schema):
    """Name and description; the key stays (sequences and broadcasts name it)."""

    name = fields.String(validate=text(200))
    description = fields.String(allow_none=True, validate=text(2000, min_len=0))


class TopicSchema(Schema):
    id = fields.Integer()
    key = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True)
    created_at = fields.DateTime()


class TopicMembersSchema(Schema):
    subscriber_ids = fields.List(fields.Integer(strict=True, validate=ID_RANGE), load_default=list)
    emails = fields.List(fields.String(validate=text(320)), load_default=list)


class TopicMembersAddedSchema(Schema):
    added = fields.Integer(metadata={"description": "Subscribers who joined the topic now"})
    skipped = fields.Integer(metadata={"description": "Unknown, already in it, or left it (only they can rejoin)"})


class TopicDetailSchema(TopicSchema):
    members = fields.Dict(keys=fields.String(), values=fields.Integer(),
                          metadata={"description": "How many are subscribed, and how many left"})
