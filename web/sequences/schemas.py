"""Request and response shapes. Steps and settings are polymorphic JSON: marshmallow
takes them as raw values and sequencing.steps / settings_schema validate them, so
errors name paths like ``steps.2.seconds``."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from models import Sequence
from sequencing.enroll import MAX_PER_CALL
from web.validators import ID_RANGE, text


class SequenceInSchema(Schema):
    name = fields.String(required=True, validate=text(200))
    description = fields.String(load_default=None, allow_none=True, validate=text(10_000, 0))
    settings = fields.Raw(load_default=None, allow_none=True, metadata={"description": "See sequencing/settings_schema.py"})
    steps = fields.Raw(required=True, metadata={"description": "Ordered list of steps: {type, ...fields}"})
    override_preflight = fields.Boolean(load_default=False, load_only=True, metadata={
        "description": "Replace an active sequence even if its new content fails the pre-flight check"})


def dump_steps(sequence: Sequence) -> list[dict[str, Any]]:
    """Each step as the client wrote it, plus its ``id`` and ``position``."""
    return [{"id": s.id, "position": s.position, "type": s.type, **(s.config or {})} for s in sequence.steps]


def _steps(obj: Sequence | dict[str, Any]) -> list[dict[str, Any]]:
    return obj["steps"] if isinstance(obj, dict) else dump_steps(obj)


class SequenceSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String(allow_none=True)
    status = fields.String()
    version = fields.Integer()
    settings = fields.Dict()
    steps = fields.Function(_steps)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class SequenceDetailSchema(SequenceSchema):
    enrollments = fields.Dict(keys=fields.String(), values=fields.Integer(),
                              metadata={"description": "Enrollment counts by status"})


class SequenceQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(("draft", "active", "paused", "archived")))


class EnrollRequestSchema(Schema):
    subscriber_ids = fields.List(fields.Integer(strict=True, validate=ID_RANGE),
                                 load_default=list, validate=validate.Length(max=MAX_PER_CALL))
    emails = fields.List(fields.Email(validate=validate.Length(max=320)),
                         load_default=list, validate=validate.Length(max=MAX_PER_CALL))
    segment_id = fields.Integer(strict=True, validate=ID_RANGE,
                                metadata={"description": "Enroll the segment's active members (instead of ids or emails)"})

    @validates_schema
    def _one_batch(self, data: dict[str, Any], **_kwargs: Any) -> None:
        ids, emails = data.get("subscriber_ids") or [], data.get("emails") or []
        if data.get("segment_id") is not None:
            if ids or emails:
                raise ValidationError("Give segment_id alone, without subscriber_ids or emails.",
                                      field_name="segment_id")
            return
        if not ids and not emails:
            raise ValidationError("Give subscriber_ids, emails or segment_id.", field_name="subscriber_ids")
        if len(ids) + len(emails) > MAX_PER_CALL:
            raise ValidationError(f"At most {MAX_PER_CALL} subscribers per request.", field_name="subscriber_ids")


class EnrollResultSchema(Schema):
    enrolled = fields.Integer()
    skipped = fields.Integer()
    job_id = fields.Integer(allow_none=True, metadata={
        "description": "Set when a segment was too large to enroll in the request: the job enrolling it "
                       "(GET /jobs/{id}; its result counts enrolled and skipped)"})


class EnrollmentSchema(Schema):
    id = fields.Integer()
    subscriber_id = fields.Integer()
    email = fields.String()
    status = fields.String()
    run = fields.Integer()
    current_step = fields.Integer()
    next_run_at = fields.DateTime(allow_none=True)
    enrolled_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)
    exit_reason = fields.String(allow_none=True)
    # Advances in a row that failed (sequencing.engine.MAX_CRASHES fails it), and the last one's reason.
    crashes = fields.Integer()
    error = fields.String(allow_none=True)
    held_out = fields.Boolean(metadata={"description": "In the sequence's holdout group: walks it without its emails."})


class EnrollmentQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(("active", "paused", "completed", "exited", "failed")))
