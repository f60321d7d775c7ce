"""Building the MIME message for one outbox row.

Multipart/alternative (text first, HTML last, as RFC 2046 orders preference), a
Message-ID in our own domain, and the List-Unsubscribe pair that Gmail and Yahoo
require of bulk senders since 2024 (RFC 2369 plus RFC 8058 one-click).
"""
from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import datetime


class HeaderInjectionError(ValueError):
    """A header value contains CR or LF."""


@dataclass(frozen=True)
class Envelope:
    from_email: str
    from_name: str | None
    to_email: str
    subject: str
    html: str | None
    text: str
    unsubscribe_url: str
    unsubscribe_mailto: str | None
    message_key: str


def _clean(value: str, name: str) -> str:
    if "\r" in value or "\n" in value:
        raise HeaderInjectionError(f"{name} contains a line break")
    return value


def build_message(envelope: Envelope, now: datetime) -> EmailMessage:
    message = EmailMessage()
    domain = envelope.from_email.rsplit("@", 1)[-1]
    message["Subject"] = _clean(envelope.subject, "subject")
    message["From"] = Address(display_name=_clean(envelope.from_name or "", "from_name"),
                              addr_spec=_clean(envelope.from_email, "from_email"))
    message["To"] = _clean(envelope.to_email, "to")
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(idstring=envelope.message_key.replace(":", "."), domain=domain)
    targets = [f"<{envelope.unsubscribe_url}>"]
    if envelope.unsubscribe_mailto:
        targets.insert(0, f"<{envelope.unsubscribe_mailto}>")
    message["List-Unsubscribe"] = _clean(", ".join(targets), "list-unsubscribe")
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["X-Eseq-Message"] = _clean(envelope.message_key, "message key")
    message.set_content(envelope.text or " ")
    if envelope.html:
        message.add_alternative(envelope.html, subtype="html")
    return message
