"""Mailgun webhooks: one JSON event per POST, signed inside the body.

``signature = {timestamp, token, signature}`` where signature is the hex
HMAC-SHA256 of timestamp+token under the domain's HTTP webhook signing key. The
signature does not cover event-data, so the token is what ties a request to one
delivery: it is returned as the nonce and stored under a unique key, so a captured
signature cannot be reused with other event data, and its timestamp must be recent.
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from inbound.events import (InboundRequest, NormalizedEvent, VerificationError, check_age, content_id, from_unix,
                            load_json, message_ref, outbox_key, text)

NAME = "mailgun"
SECRET_KEYS = ("webhook_signing_key",)
# Mailgun retries for about 8 hours; see sendgrid.MAX_AGE_SECONDS for the reasoning.
MAX_AGE_SECONDS = 9 * 3600

_KINDS = {"rejected": "rejected", "delivered": "delivered", "failed": "bounced", "opened": "opened",
          "clicked": "clicked", "unsubscribed": "unsubscribed", "complained": "complained"}


def verify(request: InboundRequest, configs: list[dict[str, Any]], now: datetime, **_: Any) -> str | None:
    document = load_json(request.body)
    signature = document.get("signature") if isinstance(document, dict) else None
    if not isinstance(signature, dict):
        raise VerificationError("signature missing")
    timestamp, token, given = (str(signature.get(k) or "") for k in ("timestamp", "token", "signature"))
    if not (timestamp and token and given):
        raise VerificationError("signature incomplete")
    check_age(from_unix(timestamp) if timestamp.isdigit() else None, now, MAX_AGE_SECONDS)
    for config in configs:
        key = str(config["webhook_signing_key"]).encode()
        expected = hmac.new(key, (timestamp + token).encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, given.lower()):
            return f"token:{token}"[:300]
    raise VerificationError("signature does not verify")


def parse(body: bytes) -> list[NormalizedEvent]:
    document = load_json(body)
    data = document.get("event-data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise VerificationError("event-data missing", status=400)
    event = data.get("event")
    kind = _KINDS.get(event) if isinstance(event, str) else None
    bounce_type = None
    if kind == "bounced":
        if data.get("severity") == "temporary":
            kind = "deferred"  # Mailgun keeps retrying a temporary failure itself
        else:
            bounce_type = "hard"
    message = data.get("message") if isinstance(data.get("message"), dict) else {}
    headers = message.get("headers") if isinstance(message.get("headers"), dict) else {}
    status = data.get("delivery-status") if isinstance(data.get("delivery-status"), dict) else {}
    variables = data.get("user-variables") if isinstance(data.get("user-variables"), dict) else {}
    reason = status.get("description") or status.get("message") or data.get("reason")
    return [NormalizedEvent(
        provider_event_id=str(data.get("id") or content_id(data))[:300], message_ref=message_ref(headers.get("message-id")),
        kind=kind, bounce_type=bounce_type, occurred_at=from_unix(data.get("timestamp")), raw=document,
        recipient=text(data.get("recipient"), 320), reason=text(reason),
        message_key=outbox_key(variables.get("eseq_message")))]
