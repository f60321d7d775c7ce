"""Compliance on the real send path (PostgreSQL, aiosmtpd on loopback): the footer
that keeps marketing email lawful, and DKIM signatures that survive the trip."""
from __future__ import annotations

from email.message import Message as MimeMessage

from sqlalchemy import update

from models import Account, db
from models.base import utcnow
from sequencing.claims import claim_due_enrollments
from sequencing.engine import advance_enrollments
from tests.integration.test_sending import send_in_process, smtp  # noqa: F401 (fixture)
from tests.support import factories

UNSUBSCRIBE_PREFIX = "http://localhost:8000/u/"
ADDRESS = "Alice & Co, 1 Main St\nSpringfield"


def queue_one(step: dict, settings: dict | None = None, postal_address: str | None = ADDRESS) -> int:
    acct = factories.account()
    with db.session_scope() as s:
        s.execute(update(Account).where(Account.id == acct).values(postal_address=postal_address))
    seq = factories.sequence(acct, [step], settings=settings)
    now = utcnow()
    factories.enroll(acct, seq, factories.subscribers(acct, 1), now)
    with db.session_scope() as s:
        ids = claim_due_enrollments(s, now, 10)
    with db.session_scope() as s:
        [message_id] = advance_enrollments(s, ids, now).message_ids
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


def test_a_transactional_email_gets_no_footer(smtp):  # noqa: F811
    queue = queue_one({"type": "email", "subject": "Your receipt", "html": "<p>Paid: $10</p>"},
                      settings={"transactional": True})
    send_in_process([queue])
    [email] = smtp.handler.to("user0@example.test")
    body = parts(email)
    assert UNSUBSCRIBE_PREFIX not in body["text/html"] and UNSUBSCRIBE_PREFIX not in body["text/plain"]
    assert "Springfield" not in body["text/html"] + body["text/plain"]
    assert email["List-Unsubscribe"], "the header stays: it costs nothing and mailbox providers look for it"
