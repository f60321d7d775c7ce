from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import Schema, ValidationError, fields, validate

from accounts.webhook_secret import DEFAULT_GRACE, MAX_GRACE
from analytics.retention import MAX_DAYS, MIN_DAYS
from audience.fields import clean_timezone
from core.errors import InvalidFieldError
from delivery.mime import is_writable_address
from models.account import OPT_IN_MODES
from web.validators import no_nul, one_line, text


def known_zone(value: str) -> None:
    """An IANA zone name, checked as subscribers' zones are."""
    try:
        if clean_timezone(value) is None:
            raise ValidationError("Must not be empty.")
    except InvalidFieldError as exc:
        raise ValidationError(exc.message) from None


def writable_sender(value: str) -> None:
    """fields.Email also takes quoted local parts and address literals
    (``"a,b"@x.test``, ``a@[127.0.0.1]``) that delivery.mime cannot write: taken
    here, every email of the account would fail to build."""
    if not is_writable_address(value):
        raise ValidationError("Cannot be written as the sender of an email.")


def _days(kind: str, what: str) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=MIN_DAYS[kind], max=MAX_DAYS), metadata={
        "description": f"Days to keep {what} ({MIN_DAYS[kind]} to {MAX_DAYS}); older ones are pruned by a "
                       "periodic job (docs/operations.md, Retention)."})


class AccountCreateSchema(Schema):
    name = fields.String(required=True, validate=text(200))
    from_email = fields.Email(required=True, validate=[validate.Length(max=320), writable_sender])
    from_name = fields.String(load_default=None, allow_none=True, validate=[validate.Length(max=200), one_line])
    postal_address = fields.String(load_default=None, allow_none=True, validate=text(500, min_len=0))
    opt_in = fields.String(load_default="single", validate=validate.OneOf(OPT_IN_MODES))


_OPT_IN = ("How the public subscribe form takes new addresses: single (active at once) or double (pending "
           "until they confirm by email). Subscribers the API creates are always active.")


class AccountUpdateSchema(Schema):
    """What an account may change of itself: how its mail is signed off. Each
    field is optional; null clears from_name and postal_address."""

    name = fields.String(validate=text(200))
    from_email = fields.Email(validate=[validate.Length(max=320), writable_sender])
    from_name = fields.String(allow_none=True, validate=[validate.Length(max=200), one_line])
    postal_address = fields.String(allow_none=True, validate=text(500, min_len=0), metadata={
        "description": "Printed in the compliance footer of marketing email (CAN-SPAM asks for it)."})
    opt_in = fields.String(validate=validate.OneOf(OPT_IN_MODES), metadata={"description": _OPT_IN})
    form_redirect_url = fields.URL(allow_none=True, schemes={"http", "https"}, require_tld=False,
                                   validate=[validate.Length(max=2000), no_nul], metadata={
                                       "description": "Where a browser goes after posting the subscribe form (your "
                                                      "own thank-you page); null: the platform's own"})
    timezone = fields.String(validate=known_zone, metadata={
        "description": "IANA zone the console shows your times in, e.g. Europe/Berlin (the API answers in UTC)"})
    retention_events_days = _days("events", "raw events (rollups are kept forever); default 400")
    retention_bodies_days = _days("bodies", "the subject and content of sent messages (the rows stay); default 30")
    retention_inbound_days = _days("inbound", "providers' raw webhook events, once processed; default 30")


def _subscribe_url(account: Any) -> str | None:
    form_key = account["form_key"] if isinstance(account, dict) else account.form_key
    return f"{current_app.config['ESEQ_SETTINGS'].public_base_url}/subscribe/{form_key}" if form_key else None


class AccountSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String()
    from_email = fields.String()
    from_name = fields.String(allow_none=True)
    postal_address = fields.String(allow_none=True)
    opt_in = fields.String(metadata={"description": _OPT_IN})
    form_key = fields.String(allow_none=True, metadata={"description": "The public key of the subscribe form"})
    form_redirect_url = fields.String(allow_none=True)
    timezone = fields.String()
    retention_events_days = fields.Integer()
    retention_bodies_days = fields.Integer()
    retention_inbound_days = fields.Integer()
    subscribe_url = fields.Function(_subscribe_url, metadata={
        "description": "The subscribe form: GET for an embeddable HTML form, POST form-encoded or JSON"})
    created_at = fields.DateTime()


class AccountCreatedSchema(AccountSchema):
    api_key = fields.String(metadata={"description": "Shown once; store it now."})


class TokenRequestSchema(Schema):
    api_key = fields.String(required=True, validate=validate.Length(min=1, max=200))


class TokenSchema(Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()


class DkimKeySchema(Schema):
    selector = fields.String(required=True, validate=text(63),
                             metadata={"description": "Published at <selector>._domainkey.<domain>."})
    domain = fields.String(required=True, validate=text(253), metadata={"description": "The d= of signatures."})
    # A 4096-bit key's PEM is about 3,300 characters.
    private_key = fields.String(required=True, load_only=True, validate=text(8000),
                                metadata={"description": "PEM RSA private key, 1024 to 4096 bits. Never returned."})


class DkimRecordSchema(Schema):
    selector = fields.String()
    domain = fields.String()
    public_key_dns = fields.String(metadata={"description": "The TXT record to publish at "
                                             "<selector>._domainkey.<domain>."})


class WebhookSecretSchema(Schema):
    secret = fields.String(metadata={"description": "Verifies the X-Eseq-Signature header of webhook-step calls: "
                                     "HMAC-SHA256 keyed with this string (its UTF-8 bytes) over \"<t>.<body>\"."})
    previous_expires_at = fields.DateTime(allow_none=True, metadata={
        "description": "After a rotation, calls carry a second v1 signature made with the old secret until "
                       "this time; null when no old secret signs."})


class WebhookSecretRotateSchema(Schema):
    grace_seconds = fields.Integer(strict=True, load_default=int(DEFAULT_GRACE.total_seconds()),
                                   validate=validate.Range(min=0, max=int(MAX_GRACE.total_seconds())),
                                   metadata={"description": "How long the old secret keeps signing too "
                                             "(default 86400, a day; at most 604800, a week; 0 stops it now)."})
