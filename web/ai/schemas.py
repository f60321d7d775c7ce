"""What a client sends to ask for a draft and sees of drafts. The brief is taken raw
and checked by ``ai.draft_rows`` so errors name ``brief.emails`` like the sequences'
``steps.2.subject``."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from models import AiDraft
from models.ai_draft import DRAFT_KINDS, DRAFT_STATUSES


class DraftCreateSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(DRAFT_KINDS),
                         metadata={"description": "sequence, subject_lines, rewrite or fix"})
    brief = fields.Raw(load_default=None, allow_none=True, metadata={"description": (
        "sequence: {goal, audience?, product?, tone?, emails? (3-10, default 5), language?, sender_name?, "
        "url? (where the emails link)}; "
        "subject_lines: {audience?, product?, tone?, language?}; rewrite: {tone?, length?, segment?, language?} "
        "(one of the first three)")})
    sequence_id = fields.Raw(load_default=None, allow_none=True,
                             metadata={"description": "The sequence whose step to draft (not for kind sequence)"})
    step = fields.Raw(load_default=None, allow_none=True, metadata={"description": "An email step's position"})
    count = fields.Raw(load_default=None, allow_none=True,
                       metadata={"description": "subject_lines: how many (1-10, default 5)"})


class DraftAcceptedSchema(Schema):
    id = fields.Integer()
    status = fields.String()


def _usage(draft: AiDraft) -> dict[str, Any]:
    return {"prompt_tokens": draft.prompt_tokens, "completion_tokens": draft.completion_tokens, "cost": draft.cost,
            "model_seconds": round(draft.model_seconds or 0.0, 3)}


class DraftSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    status = fields.String(metadata={"description": "queued, running, ready or failed"})
    request = fields.Dict(metadata={"description": "The brief and count as checked"})
    sequence_id = fields.Integer(allow_none=True)
    step = fields.Integer(allow_none=True)
    result = fields.Dict(allow_none=True, metadata={"description": (
        "sequence: {sequence: a POST /email-sequences body, notes}; subject_lines: {step, subject_lines, "
        "variants}; rewrite: {step, email, notes}; fix: {step, email, rounds, passes, cannot_fix, notes}")})
    preflight = fields.Dict(allow_none=True, metadata={"description": "The pre-flight report of the drafted "
                                                                     "content (as GET .../preflight)"})
    usage = fields.Function(_usage, metadata={"description": "prompt_tokens, completion_tokens, cost (null "
                                                             "without prices), model_seconds"})
    model = fields.String(allow_none=True, metadata={"description": "The model that answered, or blueprint"})
    cached = fields.Boolean(metadata={"description": "Answered from an earlier identical draft (usage zero)"})
    error = fields.String(allow_none=True)
    attempts = fields.Integer()
    applied = fields.Dict(allow_none=True, metadata={"description": "What apply made: {sequence_id, step}"})
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    applied_at = fields.DateTime(allow_none=True)


class DraftQuerySchema(Schema):
    kind = fields.String(validate=validate.OneOf(DRAFT_KINDS))
    status = fields.String(validate=validate.OneOf(DRAFT_STATUSES))


class AppliedSchema(Schema):
    sequence_id = fields.Integer()
    step = fields.Integer(allow_none=True)
    status = fields.String(metadata={"description": "The sequence's status (a new one is draft)"})
    version = fields.Integer()
