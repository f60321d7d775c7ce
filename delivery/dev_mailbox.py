"""The development mail catcher: what ``make run`` delivers to when nothing else is
configured, so a newcomer sees the product send mail without it leaving the machine.

An SMTP server (aiosmtpd) on loopback takes every message and keeps it, as a mail
client's own store would, in a Maildir under ``var/dev_mail`` (Python's ``mailbox``
writes each file in ``tmp/`` and moves it to ``new/``, so a reader never sees half
an email, and caught mail survives a restart). The send path reaches it as an
ordinary SMTP provider named ``dev-catcher``; web shows the Maildir at ``/dev/mail``.
It exists only on the embedded default with no SMTP_HOST (settings.dev_smtp_port):
with a database URL set, an account without providers still defers its mail.
"""
from __future__ import annotations

import mailbox
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

from delivery.routing import Route

if TYPE_CHECKING:  # only run_local serves SMTP; the send path needs just the route
    from aiosmtpd.controller import Controller

PROVIDER_NAME = "dev-catcher"
HOST = "127.0.0.1"  # loopback only: caught mail holds working unsubscribe and tracking links
PAGE_PATH = "/dev/mail"


def route(port: int) -> Route:
    """The catcher as the default provider, in place of the SMTP_* relay."""
    return Route(provider_id=None, name=PROVIDER_NAME, kind="smtp", config={"host": HOST, "port": port})


def banner(public_base_url: str) -> str:
    """The line that says, wherever it is shown, that this is development delivery."""
    return (f"development delivery: mail is caught at {public_base_url}{PAGE_PATH}, "
            "nothing leaves this machine")


class CatchingHandler:
    """aiosmtpd handler: every message to any recipient is kept, once per transaction,
    with the envelope as a delivering MTA records it (Return-Path, X-Original-To)."""

    def __init__(self, folder: Path, on_caught: Callable[[str, list[str], str], None] | None = None) -> None:
        self.box = mailbox.Maildir(folder, create=True)
        self.on_caught = on_caught

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content
        trace = f"Return-Path: <{envelope.mail_from}>\r\n"
        trace += "".join(f"X-Original-To: {rcpt}\r\n" for rcpt in envelope.rcpt_tos)
        key = self.box.add(trace.encode() + content)
        if self.on_caught is not None:
            subject = str(message_from_bytes(content, policy=policy.default).get("Subject", ""))
            self.on_caught(key, list(envelope.rcpt_tos), subject)
        return "250 caught by the development mail catcher"


def catcher(folder: Path, port: int,
            on_caught: Callable[[str, list[str], str], None] | None = None) -> Controller:
    """An SMTP server on loopback (not yet started) that keeps mail in ``folder``."""
    from aiosmtpd.controller import Controller

    return Controller(CatchingHandler(folder, on_caught), hostname=HOST, port=port)


@dataclass(frozen=True)
class CaughtMail:
    key: str
    received_at: datetime
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def recipients(self) -> list[str]:
        return [str(v) for v in self.message.get_all("X-Original-To", [])]

    def body(self, subtype: str) -> str | None:
        """The text of the ``plain`` or ``html`` part, or None when there is none."""
        part = self.message.get_body(preferencelist=(subtype,))
        return part.get_content() if part is not None else None  # type: ignore[union-attr]


def _read(box: mailbox.Maildir, key: str) -> CaughtMail:
    message = message_from_bytes(box.get_bytes(key), policy=policy.default)
    received = datetime.fromtimestamp(box.get_message(key).get_date(), tz=timezone.utc)
    return CaughtMail(key, received, message)  # type: ignore[arg-type]


def caught(folder: Path) -> list[CaughtMail]:
    """Every caught email, newest first."""
    if not folder.exists():
        return []
    box = mailbox.Maildir(folder, create=False)
    mails = []
    for key in box.keys():
        try:
            mails.append(_read(box, key))
        except (KeyError, FileNotFoundError):  # removed while listing
            continue
    return sorted(mails, key=lambda m: (m.received_at, m.key), reverse=True)


def one(folder: Path, key: str) -> CaughtMail | None:
    """One caught email by its Maildir key, or None when there is no such email."""
    if not folder.exists():
        return None
    try:
        return _read(mailbox.Maildir(folder, create=False), key)
    except (KeyError, FileNotFoundError):
        return None


def raw(folder: Path, key: str) -> bytes | None:
    """The email as caught, bytes for bytes (with the envelope lines in front)."""
    if not folder.exists():
        return None
    try:
        return mailbox.Maildir(folder, create=False).get_bytes(key)
    except (KeyError, FileNotFoundError):
        return None
