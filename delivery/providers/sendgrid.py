"""SendGrid v3 Mail Send (POST /v3/mail/send).

Idempotency: SendGrid takes no idempotency key on Mail Send, so a retry after a
lost 202 can deliver twice. Our key goes in ``custom_args.eseq_message`` (echoed
on every event webhook, so a duplicate can be reconciled) and as the
X-Eseq-Message header of the delivered copy.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from delivery.errors import DeliveryError, PermanentDeliveryError, RejectedMessageError, TransientDeliveryError
from delivery.providers import http
from delivery.providers.parts import Parts, split_message


@dataclass(frozen=True)
class SendgridConfig:
    api_key: str = field(repr=False)
    base_url: str = "https://api.sendgrid.com"
    timeout: float = http.DEFAULT_TIMEOUT
    name: str = "sendgrid"


def build_payload(parts: Parts, sender: str, recipient: str) -> dict[str, Any]:
    content = [{"type": "text/plain", "value": parts.text or " "}]
    if parts.html:
        content.append({"type": "text/html", "value": parts.html})  # SendGrid requires plain first
    sender_field = {"email": sender, **({"name": parts.from_name} if parts.from_name else {})}
    return {
        "personalizations": [{"to": [{"email": recipient}]}],
        "from": sender_field,
        "subject": parts.subject,
        "content": content,
        "headers": parts.headers,
        "custom_args": {"eseq_message": parts.key},
    }


# An error about one address of the "to" array (personalizations.0.to.0.email), not
# about the array itself ("the to array is required...": our payload's fault).
_RECIPIENT_FIELD = re.compile(r"personalizations\.\d+\.to\.\d+(\.email)?")


def _is_about_recipient(error: dict[str, Any]) -> bool:
    return bool(_RECIPIENT_FIELD.fullmatch(str(error.get("field") or "")))


def classify(response: http.Response) -> DeliveryError:
    errors = [e for e in response.json().get("errors") or [] if isinstance(e, dict)]
    detail = "; ".join(f"{e.get('field') or '-'}: {e.get('message') or ''}" for e in errors) or response.text()
    failure = http.provider_failure("SendGrid", response, detail)
    if failure is not None:
        return failure
    if response.status == 400 and errors and all(_is_about_recipient(e) for e in errors):
        return PermanentDeliveryError(f"SendGrid refused the recipient: {detail}")
    if response.status == 413:
        return RejectedMessageError(f"SendGrid refused the message as too large: {detail}")
    # Any other 4xx is about our payload or account (unverified sender, size):
    # suppressing the recipient would punish them for it.
    return TransientDeliveryError(f"SendGrid rejected the request ({response.status}): {detail}")


class SendgridTransport(http.HttpTransport):
    config: SendgridConfig

    def send(self, message: EmailMessage, sender: str, recipient: str) -> str:
        body = json.dumps(build_payload(split_message(message), sender, recipient)).encode()
        response = http.post(self.config.base_url.rstrip("/") + "/v3/mail/send", body, {
            "Authorization": f"Bearer {self.config.api_key}",
            "Content-Type": "application/json",
        }, self.config.timeout, self.check)
        if response.status == 202:
            # Accepted is accepted: without the header, fall back to our Message-ID
            # rather than raise and have the message sent again.
            return response.headers.get("X-Message-Id") or str(message["Message-ID"])
        raise classify(response)
