"""The pieces of our MIME message (delivery.mime) that HTTP APIs want as separate
fields: they take subject, bodies and headers, not the message itself."""
from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr

# Headers we set that the recipient's mailbox needs; each provider is asked to add
# them verbatim (RFC 2369 / RFC 8058 one-click unsubscribe, and our key so a copy
# can be recognised as ours whichever provider delivered it).
PASSED_HEADERS = ("List-Unsubscribe", "List-Unsubscribe-Post", "X-Eseq-Message")


@dataclass(frozen=True)
class Parts:
    from_name: str
    subject: str
    text: str
    html: str | None
    headers: dict[str, str]
    key: str  # X-Eseq-Message: the outbox row's idempotency key


def split_message(message: EmailMessage) -> Parts:
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    headers = {name: str(message[name]) for name in PASSED_HEADERS if message[name] is not None}
    return Parts(
        from_name=parseaddr(str(message["From"] or ""))[0],
        subject=str(message["Subject"] or ""),
        text=text_part.get_content() if text_part is not None else "",
        html=html_part.get_content() if html_part is not None else None,
        headers=headers,
        key=str(message["X-Eseq-Message"] or ""),
    )
