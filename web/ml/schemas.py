"""What a client sends to train a model and sees of models and scores. The
artifact's bytes are never part of an answer; its hash is."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from ml.model import KINDS
from models.ml import ML_STATUSES
from web.csv_response import FormatQuerySchema
from web.validators import in_era


class ModelCreateSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS),
                         metadata={"description": "churn, engagement or send_time"})
    as_of = fields.AwareDateTime(default_timezone=None, load_default=None, allow_none=True, validate=in_era,
                                 metadata={"description": "Learn from history up to this moment (with an offset), "
                                                          "and score as of it; default now. Not in the future."})


class ModelAcceptedSchema(Schema):
    id = fields.Integer()
    status = fields.String()


class ModelSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    status = fields.String(metadata={"description": "queued, training, ready or failed"})
    as_of = fields.DateTime()
    window_start = fields.DateTime(allow_none=True, metadata={"description": "The earliest event learned from"})
    window_end = fields.DateTime(allow_none=True, metadata={"description": "The training window's end (as_of)"})
    params = fields.Dict()
    metrics = fields.Dict(metadata={"description": "Evaluation on a later time cut: for churn ROC AUC, PR AUC, "
                                                   "Brier score, calibration table and the simple rules' AUCs"})
    promoted = fields.Boolean(metadata={"description": "It beat the simple rules (a churn model that did not "
                                                      "is kept for the record; its rule scores instead)"})
    live = fields.Boolean(metadata={"description": "Scoring uses this model for its kind"})
    artifact_sha256 = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    attempts = fields.Integer()
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class ModelQuerySchema(Schema):
    kind = fields.String(validate=validate.OneOf(KINDS))
    status = fields.String(validate=validate.OneOf(ML_STATUSES))


class ScoresSchema(Schema):
    """A subscriber's latest scores."""

    churn_risk = fields.Float(allow_none=True, metadata={"description": "0-1, higher is likelier to churn"})
    engagement = fields.Float(allow_none=True, metadata={"description": "0-1"})
    best_send_hour = fields.Integer(allow_none=True, metadata={"description": "0-23 in the subscriber's time zone"})
    scored_at = fields.DateTime(metadata={"description": "The scores are as of this moment"})
    model_id = fields.Integer(allow_none=True, metadata={"description": "The churn model's id; null when the "
                                                                        "simple rule scored"})
    model_ids = fields.Dict(keys=fields.String(), values=fields.Integer(allow_none=True),
                            metadata={"description": "Per kind, the model that scored (null: its rule)"})


class SubscriberScoresSchema(ScoresSchema):
    subscriber_id = fields.Integer()
    email = fields.String()


class ScoresQuerySchema(FormatQuerySchema):
    pass
