from __future__ import annotations

from datetime import timezone

from marshmallow import Schema, fields, validate

from models.message import MESSAGE_STATUSES
from web.validators import ID_RANGE, in_era, text


class MessageQuerySchema(Schema):
    sequence_id = fields.Integer(validate=ID_RANGE)
    subscriber_id = fields.Integer(validate=ID_RANGE)
    broadcast_id = fields.Integer(validate=ID_RANGE)
    status = fields.String(validate=validate.OneOf(MESSAGE_STATUSES))
    email = fields.String(validate=text(320), metadata={"description": "Part of the recipient's address "
                                                                      "(case-insensitive)"})
    since = fields.AwareDateTime(default_timezone=timezone.utc, validate=in_era,
                                 metadata={"description": "Created at or after (ISO 8601; UTC without an offset)"})
    until = fields.AwareDateTime(default_timezone=timezone.utc, validate=in_era,
                                 metadata={"description": "Created before"})


class MessageSchema(Schema):
    id = fields.Integer()
    sequence_id = fields.Integer(allow_none=True)
    broadcast_id = fields.Integer(allow_none=True)
    subscriber_id = fields.Integer()
    enrollment_id = fields.Integer(allow_none=True)
    step_id = fields.Integer(allow_none=True)
    variant = fields.String(allow_none=True)
    to_email = fields.String()
    subject = fields.String(allow_none=True)
    status = fields.String()
    provider = fields.String(allow_none=True)
    provider_message_id = fields.String(allow_none=True)
    attempts = fields.Integer()
    error = fields.String(allow_none=True)
    retry_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)
