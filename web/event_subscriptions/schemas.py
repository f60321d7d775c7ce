"""Request and response shapes of event subscriptions; the secret is only ever in
the creation's answer."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from webhooks.event_types import EVENT_TYPES

_EVENTS = {"description": "Event types: " + ", ".join(EVENT_TYPES)}


class EventSubscriptionCreateSchema(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000),
                        metadata={"example": "https://example.com/hooks/eseq"})
    events = fields.List(fields.String(validate=validate.Length(max=100)), required=True,
                         validate=validate.Length(min=1, max=50), metadata=_EVENTS)
    secret = fields.String(allow_none=True, validate=validate.Length(max=200),
                           metadata={"description": "Signing secret (16-200 characters); generated when not given"})


class EventSubscriptionUpdateSchema(Schema):
    url = fields.String(validate=validate.Length(min=1, max=2000))
    events = fields.List(fields.String(validate=validate.Length(max=100)), validate=validate.Length(min=1, max=50),
                         metadata=_EVENTS)
    secret = fields.String(validate=validate.Length(max=200))
    paused = fields.Boolean()


class EventSubscriptionSchema(Schema):
    id = fields.Integer()
    url = fields.String()
    events = fields.List(fields.String())
    paused = fields.Boolean()
    deliveries = fields.Dict(keys=fields.String(), values=fields.Integer(),
                             metadata={"description": "Batches by status, and events_delivered"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class EventSubscriptionCreatedSchema(EventSubscriptionSchema):
    secret = fields.String(metadata={"description": "Shown this once: verify signatures with it"})


class EventDeliverySchema(Schema):
    id = fields.Integer()
    status = fields.String()
    attempts = fields.Integer()
    event_count = fields.Integer()
    event_ids = fields.Function(lambda d: [e.get("id") for e in (d.payload or {}).get("events", [])])
    response_status = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    retry_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    delivered_at = fields.DateTime(allow_none=True)
