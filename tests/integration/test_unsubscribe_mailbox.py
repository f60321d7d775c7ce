"""List-Unsubscribe's mailto reaches the platform's own unsubscribe mailbox when
ESEQ_UNSUBSCRIBE_DOMAIN is set: a real SMTP server (aiosmtpd) on loopback, real
PostgreSQL, each email with an address of its own that nobody can forge."""
from __future__ import annotations

import os
import re
import smtplib
import subprocess
import sys
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from delivery.tracking import Link, Tracker
from inbound.unsubscribe_mailbox import UnsubscribeMailbox
from models import Enrollment, Event, Message, Subscriber, Suppression, db
from scripts.unsubscribe_mailbox import mailbox
from settings import Settings, get_settings
from tests.conftest import ROOT
from tests.support.sending import STEP, account_of, queue_emails, send_in_process
from tests.support.smtp import free_port

DOMAIN = "unsub.example.test"
WAIT_THEN_MORE = [STEP, {"type": "delay", "seconds": 3600}, STEP]
PLEASE = b"Subject: unsubscribe\r\n\r\nPlease stop.\r\n"


@pytest.fixture
def settings() -> Iterator[Settings]:
    variables = {"ESEQ_UNSUBSCRIBE_DOMAIN": DOMAIN, "ESEQ_UNSUBSCRIBE_SMTP_HOST": "127.0.0.1",
                 "ESEQ_UNSUBSCRIBE_SMTP_PORT": str(free_port())}
    os.environ.update(variables)
    get_settings.cache_clear()
    try:
        yield get_settings()
    finally:
        for name in variables:
            os.environ.pop(name, None)
        get_settings.cache_clear()


@pytest.fixture
def inbox(settings: Settings) -> Iterator[int]:
    server = mailbox(settings)
    server.start()
    try:
        yield settings.unsubscribe_smtp_port
    finally:
        server.stop()


def _mail(port: int, to: str) -> None:
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.sendmail("reader@example.test", [to], PLEASE)


def _state(message_id: int) -> tuple[str, list[str], list[str]]:
    """The recipient's status, their suppressions' reasons and their enrollments' statuses."""
    with db.session_scope() as s:
        message = s.get(Message, message_id)
        subscriber = s.get(Subscriber, message.subscriber_id)
        reasons = list(s.scalars(select(Suppression.reason).where(Suppression.email == message.to_email)))
        enrollments = list(s.scalars(select(Enrollment.status).where(Enrollment.subscriber_id == subscriber.id)))
        return subscriber.status, reasons, enrollments


def test_mail_to_an_emails_mailto_unsubscribes_its_recipient_and_ends_their_enrollments(smtp, inbox):
    first, second = queue_emails(2, WAIT_THEN_MORE)
    assert send_in_process([first, second]) == {"sent": 2}
    with db.session_scope() as s:
        to = s.get(Message, first).to_email
    [email] = smtp.handler.to(to)
    mailto = re.search(r"<mailto:([^?>]+)\?subject=unsubscribe>", email["List-Unsubscribe"])[1]
    assert mailto.startswith("unsub-") and mailto.endswith(f"@{DOMAIN}")
    assert _state(first) == ("active", [], ["active"])
    _mail(inbox, mailto)
    assert _state(first) == ("unsubscribed", ["unsubscribed"], ["exited"])
    assert _state(second) == ("active", [], ["active"]), "only that email's recipient"
    with db.session_scope() as s:
        [event] = s.scalars(select(Event).where(Event.name == "unsubscribed"))
        assert event.message_id == first and event.properties == {"via": "mailto"}
    _mail(inbox, mailto)  # a second request changes nothing more
    assert _state(first) == ("unsubscribed", ["unsubscribed"], ["exited"])


def test_an_address_we_did_not_make_is_refused_at_rcpt_and_changes_nothing(settings, inbox):
    message_id, other_id = queue_emails(2, WAIT_THEN_MORE)
    account = account_of([message_id])
    tracker = Tracker(settings.secret_key, settings.public_base_url, DOMAIN)
    genuine = tracker.unsubscribe_mailto(account, message_id, "sender@x.test").removeprefix("mailto:").split("?")[0]
    local = genuine.split("@")[0]
    mac = local.rsplit("-", 1)[1]
    flipped = local[:-1] + ("0" if local[-1] != "0" else "1")
    for forged in (f"{flipped}@{DOMAIN}", f"unsub-{account:x}-{other_id:x}-{mac}@{DOMAIN}",
                   f"unsub-{account + 1:x}-{message_id:x}-{mac}@{DOMAIN}", f"unsub-{message_id:x}-{mac}@{DOMAIN}",
                   f"{local}@other.example.test", f"postmaster@{DOMAIN}", f"unsub-{message_id:x}@{DOMAIN}"):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            _mail(inbox, forged)
        assert refused.value.recipients[forged][0] == 550, forged
    assert _state(message_id) == ("active", [], ["active"])
    assert tracker.mailbox_message(genuine.upper()) == Link(message_id, account), "mail systems may fold the case"
    assert Tracker(settings.secret_key, settings.public_base_url).mailbox_message(genuine) is None


def test_when_the_unsubscribe_cannot_be_recorded_the_sender_is_told_to_try_again(settings):
    def database_away(links: list[Link]) -> None:
        raise ConnectionError("database away")

    tracker = Tracker(settings.secret_key, settings.public_base_url, DOMAIN)
    address = tracker.unsubscribe_mailto(1, 42, "s@x.test").removeprefix("mailto:").split("?")[0]
    server = Controller(UnsubscribeMailbox(tracker, database_away), hostname="127.0.0.1", port=free_port())
    server.start()
    try:
        with pytest.raises(smtplib.SMTPDataError) as answer:
            _mail(server.port, address)
        assert answer.value.smtp_code == 451
    finally:
        server.stop()


def test_without_a_mailbox_domain_the_mailto_is_the_senders_address():
    assert Tracker("k" * 32, "https://m.test").unsubscribe_mailto(1, 7, "news@shop.test") == \
        "mailto:news@shop.test?subject=unsubscribe"


def test_the_mailbox_process_refuses_to_start_without_its_domain():
    env = {k: v for k, v in os.environ.items() if k != "ESEQ_UNSUBSCRIBE_DOMAIN"}
    done = subprocess.run([sys.executable, "-m", "scripts.unsubscribe_mailbox"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "ESEQ_UNSUBSCRIBE_DOMAIN is not set" in done.stderr


def test_make_run_starts_the_mailbox_only_when_its_domain_is_set(tmp_path):
    from scripts.run_local import commands

    base = {"ESEQ_VAR_DIR": str(tmp_path), "PORT": "8000"}
    assert "unsubscribe_mailbox" not in commands(base)
    argv = commands({**base, "ESEQ_UNSUBSCRIBE_DOMAIN": DOMAIN})["unsubscribe_mailbox"]
    assert argv[-2:] == ["-m", "scripts.unsubscribe_mailbox"]
