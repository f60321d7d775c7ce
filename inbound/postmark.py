"""Postmark webhooks: one JSON record per POST, authenticated with HTTP basic auth.

Postmark signs nothing: the credentials set in the webhook's URL are the whole
proof, so the body is trusted as far as the credentials are (serve this over
HTTPS). There is no timestamp to age-check; replays are harmless because every
record is stored once (bounce and complaint IDs, otherwise a hash of the record).
"""
from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from delivery.providers import WEBHOOK_FIELDS
from inbound.events import (InboundRequest, NormalizedEvent, VerificationError, content_id, from_iso, load_json,
                            message_ref, outbox_key, text)

NAME = "postmark"
SECRET_KEYS = WEBHOOK_FIELDS[NAME]  # the provider row's webhook_* keys (delivery.providers)

# Bounce "Type" values (Postmark's bounce API) mapped like django-anymail does,
# with soft bounces kept apart so they never suppress an address. A
# SpamNotification is a receiving spam filter blocking the message, not a person
# complaining: a soft bounce, so nobody is suppressed or marked complained for it.
_BOUNCES: dict[str, tuple[str, str | None]] = {
    "HardBounce": ("bounced", "hard"), "BadEmailAddress": ("bounced", "hard"),
    "SoftBounce": ("bounced", "soft"), "Undeliverable": ("bounced", "soft"),
    "SpamNotification": ("bounced", "soft"),
    "Transient": ("deferred", None), "DnsError": ("deferred", None),
    "SpamComplaint": ("complained", None),
    "Unsubscribe": ("unsubscribed", None),
    "ManuallyDeactivated": ("rejected", None), "Unconfirmed": ("rejected", None), "Blocked": ("rejected", None),
    "DMARCPolicy": ("rejected", None),
}


def verify(request: InboundRequest, configs: list[dict[str, Any]], now: datetime, **_: Any) -> str | None:
    if request.basic_auth is None:
        raise VerificationError("basic auth missing")
    username, password = request.basic_auth
    for config in configs:
        ok_user = hmac.compare_digest(username.encode(), str(config["webhook_username"]).encode())
        ok_password = hmac.compare_digest(password.encode(), str(config["webhook_password"]).encode())
        if ok_user and ok_password:
            return None
    raise VerificationError("wrong credentials")


def parse(body: bytes) -> list[NormalizedEvent]:
    record = load_json(body)
    if not isinstance(record, dict) or not isinstance(record.get("RecordType"), str):
        raise VerificationError("expected a Postmark webhook record", status=400)
    record_type = record["RecordType"]
    kind, bounce_type, occurred, recipient = None, None, None, record.get("Recipient")
    event_id = content_id(record)
    if record_type == "Delivery":
        kind, occurred = "delivered", record.get("DeliveredAt")
    elif record_type in ("Bounce", "SpamComplaint"):
        kind, bounce_type = _BOUNCES.get(str(record.get("Type")), (None, None))
        occurred, recipient = record.get("BouncedAt"), record.get("Email")
        if record.get("ID") is not None:
            event_id = f"{record_type.lower()}:{record['ID']}"
    elif record_type in ("Open", "Click"):
        kind, occurred = ("opened" if record_type == "Open" else "clicked"), record.get("ReceivedAt")
    elif record_type == "SubscriptionChange":
        # Postmark also sends the Bounce/SpamComplaint itself; only a recipient's own
        # unsubscribe is news here.
        if record.get("SuppressSending") and record.get("SuppressionReason") == "ManualSuppression":
            kind = "unsubscribed"
        occurred = record.get("ChangedAt")
    return [NormalizedEvent(
        provider_event_id=event_id[:300], message_ref=message_ref(record.get("MessageID")), kind=kind,
        bounce_type=bounce_type, occurred_at=from_iso(occurred), raw=record, recipient=text(recipient, 320),
        reason=text(record.get("Description") or record.get("Details")),
        message_key=outbox_key((record.get("Metadata") or {}).get("eseq_message")
                               if isinstance(record.get("Metadata"), dict) else None))]
