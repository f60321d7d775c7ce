from __future__ import annotations

from marshmallow import Schema, fields, validate

from models.provider import PROVIDER_KINDS

DOMAIN = validate.Regexp(r"^[A-Za-z0-9.-]{1,253}$", error="Not a domain name.")


class ProviderCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    kind = fields.String(required=True, validate=validate.OneOf(PROVIDER_KINDS))
    priority = fields.Integer(strict=True, load_default=100, validate=validate.Range(min=0, max=10_000),
                              metadata={"description": "Lower is tried first."})
    weight = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=1000),
                            metadata={"description": "Share of traffic among equal priorities."})
    config = fields.Dict(keys=fields.String(), required=True,
                         metadata={"description": "Kind-specific settings; secrets are never returned."})
    domains = fields.List(fields.String(validate=DOMAIN), load_default=list, validate=validate.Length(max=200),
                          metadata={"description": "Recipient domains this provider is preferred for."})
    enabled = fields.Boolean(load_default=True)
    max_per_second = fields.Float(allow_none=True, load_default=None, validate=validate.Range(min=0.01, max=100_000),
                                  metadata={"description": "Send-rate limit across all workers (0.5 = 30 a minute); "
                                                           "null for none."})


class ProviderUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=100))
    priority = fields.Integer(strict=True, validate=validate.Range(min=0, max=10_000))
    weight = fields.Integer(strict=True, validate=validate.Range(min=1, max=1000))
    config = fields.Dict(keys=fields.String())
    domains = fields.List(fields.String(validate=DOMAIN), validate=validate.Length(max=200))
    enabled = fields.Boolean()
    max_per_second = fields.Float(allow_none=True, validate=validate.Range(min=0.01, max=100_000),
                                  metadata={"description": "Send-rate limit across all workers (0.5 = 30 a minute); "
                                                           "null for none."})
    reset_circuit = fields.Boolean(metadata={"description": "Close the circuit by hand."})


class HealthSchema(Schema):
    circuit_state = fields.String()
    consecutive_failures = fields.Integer()
    circuit_opened_at = fields.DateTime(allow_none=True)
    paused_until = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    last_success_at = fields.DateTime(allow_none=True)


class ProviderSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    priority = fields.Integer()
    weight = fields.Integer()
    domains = fields.List(fields.String())
    enabled = fields.Boolean()
    max_per_second = fields.Float(allow_none=True)
    config = fields.Dict()
    secrets_set = fields.List(fields.String())
    health = fields.Nested(HealthSchema)
    webhook_url = fields.String(allow_none=True, metadata={
        "description": "Where to point this provider's event webhook (this account's own URL, built on "
                       "PUBLIC_BASE_URL); null for SMTP, which reports no events."})
    created_at = fields.DateTime()
