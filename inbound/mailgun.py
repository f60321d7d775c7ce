"""Mailgun webhooks: one JSON event per POST, signed inside the body.

``signature = {timestamp, token, signature}`` where signature is the hex
HMAC-SHA256 of timestamp+token under the domain's HTTP webhook signing key. The
signature does not cover event-data, so the token is what ties a request to one
delivery: it is returned as the nonce, which inbound.store records before and
whatever happens to the events (a captured signature cannot be reused with other
event data, even one whose event was already stored), and its timestamp must be recent.
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from delivery.providers import WEBHOOK_FIELDS
from inbound.events import (InboundRequest, NormalizedEvent, VerificationError, blames_address, check_age,
                            content_id, from_unix, load_json, message_ref, outbox_key, signed_unix_time, text)

NAME = "mailgun"
SECRET_KEYS = WEBHOOK_FIELDS[NAME]  # the provider row's webhook_* keys (delivery.providers)
# Mailgun retries for about 8 hours; see sendgrid.MAX_AGE_SECONDS for the reasoning.
MAX_AGE_SECONDS = 9 * 3600

_KINDS = {"rejected": "rejected", "delivered": "delivered", "failed": "bounced", "opened": "opened",
          "clicked": "clicked", "unsubscribed": "unsubscribed", "complained": "complained"}
# Permanent failures that say nothing against the address: "old" is Mailgun giving
# up after temporary failures, "espblock" the recipient's provider blocking us.
_NOT_THE_ADDRESS = ("old", "espblock")


def _utf8(value: str) -> bytes:
    """Bytes for HMAC and compare_digest, whatever a forger put in the fields
    (compare_digest raises TypeError on non-ASCII str; a lone surrogate has no
    strict UTF-8 form)."""
    return value.encode("utf-8", "surrogatepass")


def verify(request: InboundRequest, configs: list[dict[str, Any]], now: datetime, **_: Any) -> str | None:
    document = load_json(request.body)
    signature = document.get("signature") if isinstance(document, dict) else None
    if not isinstance(signature, dict):
        raise VerificationError("signature missing")
    timestamp, token, given = (str(signature.get(k) or "") for k in ("timestamp", "token", "signature"))
    if not (timestamp and token and given):
        raise VerificationError("signature incomplete")
    check_age(signed_unix_time(timestamp), now, MAX_AGE_SECONDS)
    signed, offered = _utf8(timestamp + token), _utf8(given.lower())
    for config in configs:
        key = _utf8(str(config["webhook_signing_key"]))
        if hmac.compare_digest(hmac.new(key, signed, hashlib.sha256).hexdigest().encode(), offered):
            return f"token:{token}"[:300]
    raise VerificationError("signature does not verify")


def event_identity(data: dict[str, Any]) -> str:
    """The stored event id: event-data ``id`` and ``timestamp`` together.

    Mailgun documents ``id`` as unique only within a day, so alone it would let a
    new event be dropped as a repeat of an old one; the timestamp (to the
    microsecond) pins the day, and a retry repeats both, so a retry is still
    stored once. Not the signature token (django-anymail's choice): the same
    event may come again under a new signature (two webhooks on one URL, a
    re-signed retry) and would be counted twice. The token is recorded apart, as
    the request's nonce. Without both fields, a hash of the event."""
    event_id, moment = data.get("id"), data.get("timestamp")
    if isinstance(event_id, str) and event_id and isinstance(moment, (int, float, str)) and not isinstance(moment, bool):
        return f"{event_id}@{moment}"[:300]
    return content_id(data)


def _bounce_type(data: dict[str, Any], status: dict[str, Any]) -> str:
    """Hard only when the address is at fault: see _NOT_THE_ADDRESS and
    inbound.events.blames_address (a 5.7.x policy block suppresses nobody)."""
    if data.get("reason") in _NOT_THE_ADDRESS:
        return "soft"
    texts = (status.get("enhanced-code"), status.get("message"), status.get("description"))
    return "hard" if blames_address(*texts) else "soft"


def parse(body: bytes) -> list[NormalizedEvent]:
    document = load_json(body)
    data = document.get("event-data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise VerificationError("event-data missing", status=400)
    event = data.get("event")
    kind = _KINDS.get(event) if isinstance(event, str) else None
    status = data.get("delivery-status") if isinstance(data.get("delivery-status"), dict) else {}
    bounce_type = None
    if kind == "bounced":
        if data.get("severity") == "temporary":
            kind = "deferred"  # Mailgun keeps retrying a temporary failure itself
        else:
            bounce_type = _bounce_type(data, status)
    message = data.get("message") if isinstance(data.get("message"), dict) else {}
    headers = message.get("headers") if isinstance(message.get("headers"), dict) else {}
    variables = data.get("user-variables") if isinstance(data.get("user-variables"), dict) else {}
    reason = status.get("description") or status.get("message") or data.get("reason")
    return [NormalizedEvent(
        provider_event_id=event_identity(data), message_ref=message_ref(headers.get("message-id")),
        kind=kind, bounce_type=bounce_type, occurred_at=from_unix(data.get("timestamp")), raw=document,
        recipient=text(data.get("recipient"), 320), reason=text(reason),
        message_key=outbox_key(variables.get("eseq_message")))]
