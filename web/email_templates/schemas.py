"""Template shapes. Subjects and bodies are checked as Jinja2 when saved, so a broken
template is a 422 now rather than a failed send months later."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from content.render import TemplateRenderError, check_template
from web.validators import ID_RANGE, text


def valid_template(value: str) -> None:
    try:
        check_template(value)
    except TemplateRenderError as exc:
        raise ValidationError(f"Invalid template: {exc}") from None


def single_line(value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ValidationError("A subject must be a single line.")


class TemplateInSchema(Schema):
    name = fields.String(required=True, validate=text(200))
    subject = fields.String(required=True, validate=[*text(998), single_line, valid_template])
    html = fields.String(load_default=None, allow_none=True, validate=[*text(500_000, 0), valid_template])
    text = fields.String(load_default=None, allow_none=True, validate=[*text(500_000, 0), valid_template])


class TemplateReplaceSchema(TemplateInSchema):
    override_preflight = fields.Boolean(load_default=False, metadata={
        "description": "Replace it even if an active sequence using it then fails the pre-flight check"})


class TemplateSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    subject = fields.String()
    html = fields.String(allow_none=True)
    text = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class SampleSubscriberSchema(Schema):
    """A made-up subscriber to render with; nothing is stored."""

    email = fields.String(load_default="preview@example.com", validate=validate.Length(max=320))
    first_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    last_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    timezone = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    attributes = fields.Dict(keys=fields.String(), load_default=dict)
    tags = fields.List(fields.String(validate=validate.Length(max=100)), load_default=list)


class PreviewRequestSchema(Schema):
    subscriber_id = fields.Integer(strict=True, validate=ID_RANGE)
    subscriber = fields.Nested(SampleSubscriberSchema)


class PreviewSchema(Schema):
    subject = fields.String()
    html = fields.String(allow_none=True)
    text = fields.String()
