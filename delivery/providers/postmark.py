"""Postmark single send (POST /email).

Idempotency: Postmark takes no idempotency key, so a retry after a lost 200 can
deliver twice. Our key goes in ``Metadata.eseq_message`` (returned on bounce,
delivery and open webhooks) and as the X-Eseq-Message header of the delivered copy.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr
from typing import Any

from delivery.errors import DeliveryError, PermanentDeliveryError, ThrottledError, TransientDeliveryError
from delivery.providers import http
from delivery.providers.parts import Parts, split_message

INACTIVE_RECIPIENT = 406  # hard bounce, spam complaint or manual suppression at Postmark
INVALID_EMAIL_REQUEST = 300  # bad address, but also bad From, empty body, >50 recipients
RATE_LIMITED = 429


@dataclass(frozen=True)
class PostmarkConfig:
    server_token: str = field(repr=False)
    # Postmark's default transactional stream, for mail of sequences marked
    # transactional (and all mail when no broadcast stream is set).
    message_stream: str = "outbound"
    # Postmark's policy puts marketing (newsletters, drip sequences) on a Broadcast
    # stream: its ID here sends every other email there.
    broadcast_stream: str | None = None
    base_url: str = "https://api.postmarkapp.com"
    timeout: float = http.DEFAULT_TIMEOUT
    name: str = "postmark"


def build_payload(parts: Parts, sender: str, recipient: str, message_stream: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "From": formataddr((parts.from_name, sender)) if parts.from_name else sender,
        "To": recipient,
        "Subject": parts.subject,
        "TextBody": parts.text or " ",
        "Headers": [{"Name": name, "Value": value} for name, value in parts.headers.items()],
        "MessageStream": message_stream,
        "Metadata": {"eseq_message": parts.key},
    }
    if parts.html:
        payload["HtmlBody"] = parts.html
    return payload


def classify(response: http.Response) -> DeliveryError:
    answer = response.json()
    code = answer.get("ErrorCode")
    detail = f"ErrorCode {code}: {answer.get('Message', '')}" if code is not None else response.text()
    failure = http.provider_failure("Postmark", response, detail)
    if failure is not None:
        return failure
    if code == INACTIVE_RECIPIENT:
        return PermanentDeliveryError(f"Postmark refused the recipient: {detail}")
    if code == INVALID_EMAIL_REQUEST and "'To'" in str(answer.get("Message", "")):
        return PermanentDeliveryError(f"Postmark refused the recipient: {detail}")
    if code == RATE_LIMITED:
        return ThrottledError(f"Postmark rate limit: {detail}",
                              http.retry_after(response.headers) or http.DEFAULT_THROTTLE_WAIT)
    # Unverified sender signature, account pending or not allowed to send, a
    # malformed request: about us, not the recipient.
    return TransientDeliveryError(f"Postmark rejected the request ({response.status}): {detail}")


class PostmarkTransport(http.HttpTransport):
    config: PostmarkConfig

    def send(self, message: EmailMessage, sender: str, recipient: str) -> str:
        cfg = self.config
        marketing = not getattr(message, "transactional", False)
        stream = cfg.broadcast_stream if marketing and cfg.broadcast_stream else cfg.message_stream
        payload = build_payload(split_message(message), sender, recipient, stream)
        response = http.post(cfg.base_url.rstrip("/") + "/email", json.dumps(payload).encode(), {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "X-Postmark-Server-Token": cfg.server_token,
        }, cfg.timeout, self.check)
        answer = response.json() if response.status == 200 else {}
        if response.status == 200 and answer.get("ErrorCode", 0) == 0:
            return str(answer.get("MessageID") or message["Message-ID"])
        raise classify(response)
