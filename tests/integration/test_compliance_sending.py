"""Compliance on the real send path (PostgreSQL, aiosmtpd on loopback): the footer
that keeps marketing email lawful, and DKIM signatures that survive the trip."""
from __future__ import annotations

import os
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message as MimeMessage
from typing import Any

import dkim
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from delivery.batch import sender_identity
from delivery.sender import prepare
from delivery.tracking import Tracker
from models import Account, Message, db
from models.base import utcnow
from tests.support.sending import forget_smtp, send_in_process, use_smtp
from settings import get_settings
from tests.support import factories
from tests.support.engine import run_due
from tests.support.smtp import RecordingHandler, free_port

UNSUBSCRIBE_PREFIX = "http://localhost:8000/u/"
ADDRESS = "Alice & Co, 1 Main St\nSpringfield"


def queue_one(step: dict, settings: dict | None = None, postal_address: str | None = ADDRESS) -> int:
    acct = factories.account()
    with db.session_scope() as s:
        s.execute(update(Account).where(Account.id == acct).values(postal_address=postal_address))
    seq = factories.sequence(acct, [step], settings=settings)
    now = utcnow()
    factories.enroll(acct, seq, factories.subscribers(acct, 1), now)
    [message_id] = run_due(now)
    return message_id


def parts(email: MimeMessage) -> dict[str, str]:
    return {p.get_content_type(): p.get_payload(decode=True).decode().replace("\r\n", "\n")
            for p in email.walk() if not p.is_multipart()}


def test_a_marketing_email_without_an_unsubscribe_link_arrives_with_the_footer_and_postal_address(smtp):  # noqa: F811
    queue = queue_one({"type": "email", "subject": "Sale", "html": '<p>Sale! <a href="https://shop.test/">shop</a></p>'})
    assert send_in_process([queue]) == {"sent": 1}
    [email] = smtp.handler.to("user0@example.test")
    body = parts(email)
    html, text = body["text/html"], body["text/plain"]
    assert html.count(f'<a href="{UNSUBSCRIBE_PREFIX}') == 1, "the footer link is not turned into a click redirect"
    assert "Alice &amp; Co, 1 Main St<br>Springfield" in html
    assert html.index("Unsubscribe</a>") < html.index('<img src="http://localhost:8000/t/o/')
    assert f"Unsubscribe: {UNSUBSCRIBE_PREFIX}" in text and text.rstrip().endswith("Alice & Co, 1 Main St\nSpringfield")
    # the footer's link is this email's own, the same one the List-Unsubscribe header carries
    footer_url = html.split(f'<a href="{UNSUBSCRIBE_PREFIX}', 1)[1].split('"', 1)[0]
    assert f"<{UNSUBSCRIBE_PREFIX}{footer_url}>" in email["List-Unsubscribe"]


def test_an_email_with_its_own_unsubscribe_link_gets_no_second_footer(smtp):  # noqa: F811
    queue = queue_one({"type": "email", "subject": "News", "html": '<p>News <a href="{{ unsubscribe_url }}">opt out</a></p>',
                       "text": "News. Opt out: {{ unsubscribe_url }}"})
    send_in_process([queue])
    [email] = smtp.handler.to("user0@example.test")
    body = parts(email)
    assert body["text/html"].count(UNSUBSCRIBE_PREFIX) == 1 and ">opt out</a>" in body["text/html"]
    assert "Springfield" not in body["text/html"]
    assert body["text/plain"].strip() == f"News. Opt out: {UNSUBSCRIBE_PREFIX}{body['text/plain'].split('/u/')[1].strip()}"


def test_an_email_whose_only_unsubscribe_links_are_commented_out_or_passed_on_arrives_with_a_visible_footer(smtp):  # noqa: F811
    # The old footer commented out without its "-->": a browser hides all after it, the
    # footer put before </body> included. The other link only carries the URL along.
    html = ('<html><body><p>Sale! <a href="https://shop.test/?next={{ unsubscribe_url }}">shop</a></p>'
            '<!-- old footer: <p><a href="{{ unsubscribe_url }}">unsubscribe</a></p></body></html>')
    queue = queue_one({"type": "email", "subject": "Sale", "html": html})
    assert send_in_process([queue]) == {"sent": 1}
    [email] = smtp.handler.to("user0@example.test")
    body = parts(email)
    html, text = body["text/html"], body["text/plain"]
    assert '<a href="https://shop.test/' not in html, "the passed-on link is a click redirect like any other"
    assert '">unsubscribe</a></p>--><p style="margin-top:24px' in html, "the comment is closed before the footer"
    assert html.index("-->") < html.index("Unsubscribe</a>") < html.index("</body>")
    assert f"\n--\nUnsubscribe: {UNSUBSCRIBE_PREFIX}" in text and text.rstrip().endswith("Alice & Co, 1 Main St\nSpringfield")


def test_a_transactional_email_gets_no_footer(smtp):  # noqa: F811
    queue = queue_one({"type": "email", "subject": "Your receipt", "html": "<p>Paid: $10</p>"},
                      settings={"transactional": True})
    send_in_process([queue])
    [email] = smtp.handler.to("user0@example.test")
    body = parts(email)
    assert UNSUBSCRIBE_PREFIX not in body["text/html"] and UNSUBSCRIBE_PREFIX not in body["text/plain"]
    assert "Springfield" not in body["text/html"] + body["text/plain"]
    assert email["List-Unsubscribe"], "the header stays: it costs nothing and mailbox providers look for it"


@pytest.mark.parametrize("transactional", [True, False])
def test_the_built_email_says_whether_its_sequence_is_transactional(transactional):
    # What a provider with streams (Postmark) routes by: prepare marks the message.
    queue = queue_one({"type": "email", "subject": "Hi", "text": "Hello"}, settings={"transactional": transactional})
    s = get_settings()
    with db.session_scope() as session:
        [outgoing] = prepare(session, [queue], utcnow(), Tracker(s.secret_key, s.public_base_url), sender_identity(s))
        assert outgoing.email.transactional is transactional


class RawHandler(RecordingHandler):
    """Also keeps the bytes as they came off the wire: a signature is over those."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.raw.append(envelope.original_content or envelope.content)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def dkim_env() -> Iterator[bytes]:
    """The platform's DKIM key set through the environment, as an operator would;
    yields the public key's DNS record."""
    pem, record = factories.rsa_pem(2048)
    os.environ.update(DKIM_SELECTOR="s2026", DKIM_DOMAIN="sender.test", DKIM_PRIVATE_KEY=pem)
    get_settings.cache_clear()
    yield record.encode()
    for name in ("DKIM_SELECTOR", "DKIM_DOMAIN", "DKIM_PRIVATE_KEY"):
        os.environ.pop(name, None)
    get_settings.cache_clear()


@pytest.fixture
def raw_smtp() -> Iterator[RawHandler]:
    handler = RawHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    use_smtp(port)
    try:
        yield handler
    finally:
        controller.stop()
        forget_smtp()


def test_a_dkim_configured_accounts_email_arrives_with_a_signature_that_verifies(dkim_env, raw_smtp):
    queue = queue_one({"type": "email", "subject": "Grüße {{ subscriber.first_name }}",
                       "html": '<p>Hallo <a href="https://shop.test/">shop</a></p>'})
    assert send_in_process([queue]) == {"sent": 1}
    [raw] = raw_smtp.raw
    assert raw.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=sender.test;")
    asked: list[bytes] = []

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return dkim_env

    assert dkim.verify(raw, dnsfunc=dnsfunc)
    assert asked == [b"s2026._domainkey.sender.test."]
    tampered = raw.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: nothing")
    assert tampered != raw and not dkim.verify(tampered, dnsfunc=dnsfunc)


def test_without_dkim_configured_nothing_is_signed(raw_smtp):
    send_in_process([queue_one({"type": "email", "subject": "Hi", "text": "Hello"})])
    [raw] = raw_smtp.raw
    assert b"DKIM-Signature" not in raw


def test_an_account_with_its_own_dkim_key_signs_for_its_domain_and_the_others_keep_the_platforms(dkim_env, raw_smtp):
    from accounts.dkim import set_dkim_key
    from tests.support.factories import rsa_pem

    own = queue_one({"type": "email", "subject": "From Alice's own domain", "text": "Hello"})
    other = queue_one({"type": "email", "subject": "From Bob, platform-signed", "text": "Hello"})
    pem, record = rsa_pem(2048)
    with db.session_scope() as s:
        alice = s.scalar(select(Message.account_id).where(Message.id == own))
        set_dkim_key(s, alice, "alice2026", "alice.example.com", pem)
    assert send_in_process([own, other]) == {"sent": 2}
    records = {b"alice2026._domainkey.alice.example.com.": record.encode(),
               b"s2026._domainkey.sender.test.": dkim_env}
    signed_by: dict[str, str] = {}
    for raw in raw_smtp.raw:
        email = message_from_bytes(raw)
        tags = dict(t.strip().split("=", 1) for t in "".join(email["DKIM-Signature"].split()).split(";") if "=" in t)
        signed_by[email["Subject"]] = f"{tags['d']}/{tags['s']}"
        assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: records[name])
    assert signed_by == {"From Alice's own domain": "alice.example.com/alice2026",
                         "From Bob, platform-signed": "sender.test/s2026"}


def test_an_account_with_its_own_dkim_key_is_signed_even_without_a_platform_key(raw_smtp):
    from accounts.dkim import set_dkim_key
    from tests.support.factories import rsa_pem

    own = queue_one({"type": "email", "subject": "Own", "text": "Hello"})
    other = queue_one({"type": "email", "subject": "Unsigned", "text": "Hello"})
    pem, record = rsa_pem(1024)
    with db.session_scope() as s:
        set_dkim_key(s, s.scalar(select(Message.account_id).where(Message.id == own)), "s1", "alice.example.com", pem)
    send_in_process([own, other])
    [signed] = [raw for raw in raw_smtp.raw if b"Subject: Own" in raw]
    [unsigned] = [raw for raw in raw_smtp.raw if b"Subject: Unsigned" in raw]
    assert signed.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=alice.example.com;")
    assert "; s=s1;" in " ".join(message_from_bytes(signed)["DKIM-Signature"].split())
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: {b"s1._domainkey.alice.example.com.": record.encode()}[name])
    assert b"DKIM-Signature" not in unsigned
