"""SendGrid Event Webhook: ECDSA-signed JSON arrays of events.

Verification (SendGrid's "Signed Event Webhook"): ``X-Twilio-Email-Event-Webhook-
Signature`` is a base64 DER ECDSA P-256/SHA-256 signature over the
``X-Twilio-Email-Event-Webhook-Timestamp`` header followed by the raw body, checked
with the public key from SendGrid's settings (base64 DER SubjectPublicKeyInfo, as the
console shows it, or PEM). ``sg_message_id`` is the send response's X-Message-Id
with a ".filter..." (or ".recvd...") routing suffix appended; the suffix is cut.
"""
from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from delivery.providers import WEBHOOK_FIELDS
from inbound.events import (InboundRequest, NormalizedEvent, VerificationError, blames_address, check_age,
                            content_id, from_unix, load_json, message_ref, outbox_key, signed_unix_time, text)

NAME = "sendgrid"
SECRET_KEYS = WEBHOOK_FIELDS[NAME]  # the provider row's webhook_* keys (delivery.providers)
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# SendGrid retries a failed POST for up to 24 hours; a replay inside the window is
# harmless anyway (every event id is stored once), so the window only has to keep
# out captures older than any genuine retry.
MAX_AGE_SECONDS = 25 * 3600

# Dots also occur inside older X-Message-Ids ("14c5d75ce93.dfd.64b469"), so only the
# routing suffix SendGrid appends is cut, not everything after the first dot.
_ROUTING_SUFFIX = re.compile(r"\.(filter|recvd)[^.]*(\..*)?$")
_KINDS = {"dropped": "rejected", "delivered": "delivered", "deferred": "deferred", "bounce": "bounced",
          "open": "opened", "click": "clicked", "spamreport": "complained", "unsubscribe": "unsubscribed",
          "group_unsubscribe": "unsubscribed"}


def load_public_key(value: str) -> ec.EllipticCurvePublicKey:
    value = value.strip()
    if value.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(value.encode())
    else:
        key = serialization.load_der_public_key(base64.b64decode(value))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic-curve public key")
    return key


def verify(request: InboundRequest, configs: list[dict[str, Any]], now: datetime, **_: Any) -> str | None:
    signature, timestamp = request.header(SIGNATURE_HEADER), request.header(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise VerificationError("signature headers missing")
    check_age(signed_unix_time(timestamp), now, MAX_AGE_SECONDS)
    try:
        der = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError("signature is not base64") from None
    signed = timestamp.encode() + request.body
    for config in configs:
        try:
            load_public_key(str(config["webhook_public_key"])).verify(der, signed, ec.ECDSA(hashes.SHA256()))
            return None
        except InvalidSignature:
            continue
        except (ValueError, TypeError, binascii.Error):
            continue  # a key that does not load verifies nothing
    raise VerificationError("signature does not verify")


def parse(body: bytes) -> list[NormalizedEvent]:
    items = load_json(body)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise VerificationError("expected a JSON array of events", status=400)
    return [_normalize(item) for item in items]


def _bounce_type(item: dict[str, Any]) -> str:
    """Hard only for a bad address. SendGrid's type "blocked" is a temporary refusal;
    a "bounce" is permanent, but permanent for the address only when SendGrid's
    bounce_classification says "Invalid Address" (the others, "Technical Failure",
    "Content", "Reputation", "Frequency or Volume Too High", "Mailbox
    Unavailable" and "Unclassified", are about us, the message or the mailbox's
    state). Accounts without Bounce & Block Classifications turned on send none:
    then the enhanced code in ``status`` decides (inbound.events.blames_address)."""
    if item.get("type") == "blocked":
        return "soft"
    classification = item.get("bounce_classification")
    if isinstance(classification, str) and classification:
        return "hard" if classification == "Invalid Address" else "soft"
    return "hard" if blames_address(item.get("status"), item.get("reason")) else "soft"


def _normalize(item: dict[str, Any]) -> NormalizedEvent:
    event = item.get("event")
    kind = _KINDS.get(event) if isinstance(event, str) else None
    bounce_type = None
    if kind == "bounced":
        bounce_type = _bounce_type(item)
    ref = message_ref(item.get("sg_message_id"))
    ref = _ROUTING_SUFFIX.sub("", ref) if ref else message_ref(item.get("smtp-id"))
    return NormalizedEvent(
        provider_event_id=str(item.get("sg_event_id") or content_id(item))[:300], message_ref=ref, kind=kind,
        bounce_type=bounce_type, occurred_at=from_unix(item.get("timestamp")), raw=item,
        recipient=text(item.get("email"), 320), reason=text(item.get("reason") or item.get("response")),
        message_key=outbox_key(item.get("eseq_message")))  # custom_args arrive as top-level fields
