"""What a client sees of a job: where it is and what it did."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from models.job import JOB_STATUSES


class JobSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    status = fields.String(metadata={"description": "pending, running, completed or failed"})
    total = fields.Integer(metadata={"description": "Rows in the upload"})
    processed = fields.Integer()
    created = fields.Integer(attribute="created_count")
    updated = fields.Integer(attribute="updated_count")
    error_count = fields.Integer()
    errors = fields.List(fields.String(), metadata={"description": "The first 100 row errors, e.g. 'row 7: email: ...'"})
    result = fields.Dict(metadata={"description": "What the job did beyond the counts; an event import: "
                                                  "events, duplicates (already imported), subscribers_created"})
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)


class JobQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(JOB_STATUSES))
