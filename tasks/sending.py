"""Provider I/O on the ``send`` queue: claim, deliver, record (delivery.sender)."""
from __future__ import annotations

from datetime import timedelta

from delivery.errors import TransientDeliveryError
from delivery.sender import SenderIdentity, deliver, prepare, record
from delivery.smtp import SmtpConfig, SmtpTransport
from delivery.tracking import Tracker
from models.base import utcnow
from models.db import session_scope
from settings import get_settings
from tasks.app import app


class _NoProvider:
    """Stands where no provider is configured: every message is deferred, not lost."""

    name = "none"

    def send(self, *_: object) -> str:
        raise TransientDeliveryError("no email provider configured: set SMTP_HOST or add a provider")

    def __enter__(self) -> _NoProvider:
        return self

    def __exit__(self, *_: object) -> None:
        return None


def default_transport() -> SmtpTransport | _NoProvider:
    s = get_settings()
    if not s.smtp_host:
        return _NoProvider()
    return SmtpTransport(SmtpConfig(host=s.smtp_host, port=s.smtp_port, username=s.smtp_username,
                                    password=s.smtp_password, use_tls=s.smtp_use_tls, use_ssl=s.smtp_port == 465))


@app.task(name="sending.send_messages", ignore_result=True)
def send_messages(message_ids: list[int]) -> dict[str, int]:
    s = get_settings()
    tracker = Tracker(s.secret_key, s.public_base_url)
    with session_scope() as session:
        outgoing = prepare(session, message_ids, utcnow(), tracker, SenderIdentity(s.from_email, s.from_name),
                           lease=timedelta(seconds=s.lease_seconds))
    counts: dict[str, int] = {}
    if not outgoing:
        return counts
    with default_transport() as transport:
        for outcome in deliver(outgoing, transport):
            with session_scope() as session:
                for status, n in record(session, [outcome], utcnow()).items():
                    counts[status] = counts.get(status, 0) + n
    return counts
