"""Broadcasts' request and response shapes. The request's fields are checked by
broadcasts.validation (which names each bad one, inside ``test`` and ``variants``
too); here they are declared for the OpenAPI document and unknown ones refused."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields

from web.preflight import OverrideSchema as OverrideSchema  # re-exported: schedule takes it as activation does


class BroadcastInSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.Raw(metadata={"description": "Required on create."})
    segment_id = fields.Raw(allow_none=True, metadata={"description": "The audience: a segment of the account ..."})
    topic = fields.Raw(allow_none=True, metadata={"description": "... or the key of one of its topics (exactly one)."})
    subject = fields.Raw(allow_none=True)
    html = fields.Raw(allow_none=True)
    text = fields.Raw(allow_none=True)
    template_id = fields.Raw(allow_none=True, metadata={"description": "Content from a template; the fields above override it."})
    variants = fields.Raw(allow_none=True, metadata={"description": '[{"name", "subject"?, "html"?, "text"?}], 2 to 10.'})
    send_at = fields.Raw(allow_none=True, metadata={"description": "ISO 8601 with offset; default: when scheduled."})
    local_time = fields.Raw(allow_none=True, metadata={"description": '"HH:MM": each member gets it at that time in '
                                                                     "their zone, within 24 h of send_at."})
    best_time = fields.Raw(metadata={"description": "At each member's learned hour (ml scores), else local_time or now."})
    test = fields.Raw(allow_none=True, metadata={"description": '{"percent": 1-50, "metric": "opened" | "clicked", '
                                                               '"wait_seconds"}: a subject test on that share.'})


class BroadcastSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    segment_id = fields.Integer(allow_none=True)
    topic = fields.String(allow_none=True)
    subject = fields.String(allow_none=True)
    html = fields.String(allow_none=True)
    text = fields.String(allow_none=True)
    template_id = fields.Integer(allow_none=True)
    variants = fields.List(fields.Dict(), allow_none=True)
    send_at = fields.DateTime(allow_none=True)
    local_time = fields.String(allow_none=True)
    best_time = fields.Boolean()
    test = fields.Dict(allow_none=True)
    status = fields.String(metadata={"description": "draft | scheduled | testing | sending | sent | cancelled"})
    winner = fields.String(allow_none=True)
    decision = fields.Dict(allow_none=True, metadata={"description": "How the winner was chosen, with the counts."})
    audience_size = fields.Integer(allow_none=True, metadata={"description": "Members when sending started."})
    error = fields.String(allow_none=True)
    preflight_overridden = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    scheduled_at = fields.DateTime(allow_none=True)
    started_at = fields.DateTime(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)


class BroadcastDetailSchema(BroadcastSchema):
    counts = fields.Dict(metadata={"description": "Per variant ('default' without variants, 'held' for the rest of "
                                                  "a test before its winner): queued, sent, failed, suppressed, "
                                                  "delivered, opened, clicked, bounced, complained, unsubscribed."})
