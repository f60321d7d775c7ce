"""Request and response shapes of the suppression list; addresses are checked and
normalised by ``audience.fields`` so they match the subscribers they stand for."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate

from audience.fields import normalise_email
from core.errors import InvalidFieldError
from delivery.suppressions import MANUAL_REASONS
from web.validators import text


def _address(value: str) -> str:
    try:
        return normalise_email(value)
    except InvalidFieldError as exc:
        raise ValidationError(exc.message) from None


class SuppressionCreateSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=320), metadata={"example": "ada@example.com"})
    reason = fields.String(load_default="manual", validate=validate.OneOf(MANUAL_REASONS))

    @post_load
    def normalise(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        try:
            data["email"] = _address(data["email"])
        except ValidationError as exc:
            raise ValidationError({"email": exc.messages}) from None
        return data


class SuppressionQuerySchema(Schema):
    reason = fields.String(validate=text(50))
    email = fields.String(validate=text(320),
                          metadata={"description": "The exact address (case-insensitive)"})


class SuppressionSchema(Schema):
    id = fields.Integer()
    email = fields.String(allow_none=True, metadata={"description": "null for an erased address (kept as a keyed hash)"})
    erased = fields.Function(lambda row: row.email is None)
    reason = fields.String()
    created_at = fields.DateTime()
