from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from audience.fields import normalise_email
from core.errors import InvalidFieldError
from inbound.events import PLATFORM_NAMES
from web.limits import PROPERTIES_MAX_BYTES, json_at_most
from web.validators import ID_RANGE, in_era

NAME = validate.Regexp(r"^[A-Za-z0-9_.:\-]{1,100}$", error="Use 1-100 letters, digits, '_', '.', ':' or '-'.")
NOT_RESERVED = validate.NoneOf(sorted(PLATFORM_NAMES),
                               error="'{input}' is recorded by the platform itself; give your event another name.")


class EventCreateSchema(Schema):
    email = fields.String(validate=validate.Length(min=1, max=320),
                          metadata={"description": "Any spelling of the address (Unicode or punycode domain, any "
                                                   "case): it is the subscriber whose address normalises alike."})
    subscriber_id = fields.Integer(strict=True, validate=ID_RANGE)
    name = fields.String(required=True, validate=[NAME, NOT_RESERVED])
    properties = fields.Dict(keys=fields.String(validate=validate.Length(max=100)), load_default=dict,
                             validate=json_at_most(PROPERTIES_MAX_BYTES))
    value = fields.Float(allow_nan=False, load_default=None, allow_none=True)
    occurred_at = fields.AwareDateTime(default_timezone=None, load_default=None, allow_none=True, validate=in_era)
    id = fields.String(validate=validate.Length(min=1, max=200), load_default=None, allow_none=True,
                       metadata={"description": "Your id for this event; a retry with the same id is recorded once."})

    @validates_schema
    def _one_subscriber(self, data: dict[str, Any], **_: Any) -> None:
        if ("email" in data) == ("subscriber_id" in data):
            raise ValidationError("Give exactly one of email or subscriber_id.", "email")

    @post_load
    def _normalise(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        # The subscribers' and suppressions' own spelling (audience.fields): a
        # lower-cased punycode domain would be another subscriber, and pass the
        # suppression of the Unicode one.
        if "email" in data:
            try:
                data["email"] = normalise_email(data["email"])
            except InvalidFieldError as exc:
                raise ValidationError({"email": [exc.message]}) from None
        return data


class EventCreatedSchema(Schema):
    id = fields.Integer(allow_none=True)
    subscriber_id = fields.Integer()
    duplicate = fields.Boolean()
    enrolled = fields.Integer()
