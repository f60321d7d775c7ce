from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from inbound.events import PLATFORM_NAMES
from web.validators import ID_RANGE, in_era

NAME = validate.Regexp(r"^[A-Za-z0-9_.:\-]{1,100}$", error="Use 1-100 letters, digits, '_', '.', ':' or '-'.")
NOT_RESERVED = validate.NoneOf(sorted(PLATFORM_NAMES),
                               error="'{input}' is recorded by the platform itself; give your event another name.")


class EventCreateSchema(Schema):
    email = fields.Email(validate=validate.Length(max=320))
    subscriber_id = fields.Integer(strict=True, validate=ID_RANGE)
    name = fields.String(required=True, validate=[NAME, NOT_RESERVED])
    properties = fields.Dict(keys=fields.String(validate=validate.Length(max=100)), load_default=dict)
    value = fields.Float(allow_nan=False, load_default=None, allow_none=True)
    occurred_at = fields.AwareDateTime(default_timezone=None, load_default=None, allow_none=True, validate=in_era)
    id = fields.String(validate=validate.Length(min=1, max=200), load_default=None, allow_none=True,
                       metadata={"description": "Your id for this event; a retry with the same id is recorded once."})

    @validates_schema
    def _one_subscriber(self, data: dict[str, Any], **_: Any) -> None:
        if ("email" in data) == ("subscriber_id" in data):
            raise ValidationError("Give exactly one of email or subscriber_id.", "email")


class EventCreatedSchema(Schema):
    id = fields.Integer(allow_none=True)
    subscriber_id = fields.Integer()
    duplicate = fields.Boolean()
    enrolled = fields.Integer()
