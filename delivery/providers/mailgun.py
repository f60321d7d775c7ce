"""Mailgun message send (POST /v3/{domain}/messages, form-encoded).

Idempotency: Mailgun takes no idempotency key, so a retry after a lost 200 can
deliver twice. Our key goes in ``v:eseq_message`` (returned in every event's
user-variables, so a duplicate can be reconciled) and as the X-Eseq-Message
header of the delivered copy.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr
from urllib.parse import quote, urlencode

from delivery.errors import DeliveryError, PermanentDeliveryError, RejectedMessageError, TransientDeliveryError
from delivery.providers import http
from delivery.providers.parts import Parts, split_message


@dataclass(frozen=True)
class MailgunConfig:
    api_key: str = field(repr=False)
    domain: str
    base_url: str = "https://api.mailgun.net"  # https://api.eu.mailgun.net for EU domains
    timeout: float = http.DEFAULT_TIMEOUT
    name: str = "mailgun"


def build_fields(parts: Parts, sender: str, recipient: str) -> list[tuple[str, str]]:
    fields = [
        ("from", formataddr((parts.from_name, sender)) if parts.from_name else sender),
        ("to", recipient),
        ("subject", parts.subject),
        ("text", parts.text or " "),
    ]
    if parts.html:
        fields.append(("html", parts.html))
    fields += [(f"h:{name}", value) for name, value in parts.headers.items()]
    fields.append(("v:eseq_message", parts.key))
    return fields


def _is_about_recipient(message: str) -> bool:
    # Mailgun's 400s say which parameter is wrong: "'to' parameter is not a valid
    # address". "to parameter is missing" is our payload's fault, not the address's.
    text = message.lower()
    return ("'to'" in text or text.startswith("to parameter")) and "valid" in text


def classify(response: http.Response) -> DeliveryError:
    detail = str(response.json().get("message") or response.text())
    failure = http.provider_failure("Mailgun", response, detail)
    if failure is not None:
        return failure
    if response.status == 400 and _is_about_recipient(detail):
        return PermanentDeliveryError(f"Mailgun refused the recipient: {detail}")
    if response.status == 413:
        # The message's fault, not the address's: it fails, the recipient stays.
        return RejectedMessageError(f"Mailgun refused the message as too large: {detail}")
    # Other 400s (our From, our payload) and 404 (domain unknown to this key)
    # are about us: another provider may deliver.
    return TransientDeliveryError(f"Mailgun rejected the request ({response.status}): {detail}")


class MailgunTransport(http.HttpTransport):
    config: MailgunConfig

    def send(self, message: EmailMessage, sender: str, recipient: str) -> str:
        cfg = self.config
        body = urlencode(build_fields(split_message(message), sender, recipient)).encode()
        token = base64.b64encode(f"api:{cfg.api_key}".encode()).decode()
        url = f"{cfg.base_url.rstrip('/')}/v3/{quote(cfg.domain, safe='')}/messages"
        response = http.post(url, body, {
            "Authorization": f"Basic {token}",
            "Content-Type": "application/x-www-form-urlencoded",
        }, cfg.timeout, self.check)
        if response.status == 200:
            return str(response.json().get("id") or message["Message-ID"])
        raise classify(response)
