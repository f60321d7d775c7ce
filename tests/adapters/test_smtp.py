"""The SMTP transport against a local aiosmtpd, offering PIPELINING (as Postfix and
the big providers do) and not: messages arrive byte for byte, refusals are sorted
into permanent and transient, and the connection carries on after either."""
from __future__ import annotations

import re
import threading
from email.message import EmailMessage
from collections.abc import Iterator

import pytest

from delivery.errors import (DeliveryError, PermanentDeliveryError, RejectedMessageError, TransientDeliveryError,
                             UnconfirmedDeliveryError)
from delivery.smtp import SmtpConfig, SmtpTransport, dot_stuffed
from tests.support.smtp import PipeliningHandler as Handler, SilentAfterData, SmtpServer


@pytest.fixture(params=[True, False], ids=["pipelining", "one-command-at-a-time"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[Handler, int]]:
    handler = Handler(pipelining=request.param)
    with SmtpServer(handler=handler) as running:
        yield handler, running.port


def test_it_sends_the_built_bytes_and_returns_our_message_id(server, message):
    handler, port = server
    with SmtpTransport(SmtpConfig("127.0.0.1", port)) as smtp:
        assert smtp.send(message, "alice@news.example", "bob@example.org") == message.message_id
    (got,) = handler.received
    assert (got.sender, got.recipients) == ("alice@news.example", ["bob@example.org"])
    assert (got.message["X-Eseq-Message"], got.message["Message-ID"]) == ("42:7:a", message.message_id)
    assert [p.get_payload(decode=True) for p in got.message.get_payload()] == [b"Hi Bob\r\n", b"<p>Hi Bob</p>\r\n"]


def test_a_refused_mailbox_is_permanent_a_busy_one_transient_and_the_connection_goes_on(server, message):
    handler, port = server
    handler.refuse = {"gone@example.org": "550 5.1.1 no such user", "full@example.org": "452 4.2.2 mailbox full"}
    with SmtpTransport(SmtpConfig("127.0.0.1", port)) as smtp:
        with pytest.raises(PermanentDeliveryError, match="550"):
            smtp.send(message, "alice@news.example", "gone@example.org")
        with pytest.raises(TransientDeliveryError, match="452"):
            smtp.send(message, "alice@news.example", "full@example.org")
        smtp.send(message, "alice@news.example", "bob@example.org")
        smtp.send(message, "alice@news.example", "carol@example.org")
    assert [r.recipients for r in handler.received] == [["bob@example.org"], ["carol@example.org"]]
    assert handler.greetings == 1, "the refusals did not cost the connection"


def test_a_line_starting_with_a_dot_arrives_unchanged(server):
    from datetime import datetime, timezone

    from delivery.mime import Envelope, build_message

    handler, port = server
    text = "First line\n.hidden? no\n..two dots\n."
    dotted = build_message(Envelope(from_email="alice@news.example", from_name=None, to_email="bob@example.org",
                                    subject="Dots", html=None, text=text, unsubscribe_url="https://t.example/u/1",
                                    unsubscribe_mailto=None, message_key="1:1:a"), datetime.now(timezone.utc))
    with SmtpTransport(SmtpConfig("127.0.0.1", port)) as smtp:
        smtp.send(dotted, "alice@news.example", "bob@example.org")
    (got,) = handler.received
    assert got.message.get_payload(0).get_payload(decode=True).decode().replace("\r\n", "\n").rstrip("\n") == text


@pytest.mark.parametrize("raw", [
    b"", b".", b"..", b".leading\r\n", b"a\r\n.b\r\n..c\r\n.\r\n", b"bare\n.line\r.not\n", b"\r\n.\r\n.",
    b"no dots at all\r\n", b"x.\r\ny .\r\n",
])
def test_dot_stuffing_doubles_every_dot_that_starts_a_line_as_smtplib_does(raw):
    assert dot_stuffed(raw) == re.sub(rb"(?m)^\.", b"..", raw)


@pytest.mark.parametrize("stage, reply, expected, suppresses", [
    ("rcpt", "550 5.1.1 no such user", PermanentDeliveryError, True),
    ("rcpt", "550 no such user here", PermanentDeliveryError, True),  # no enhanced code: the address
    ("rcpt", "554 5.7.1 Relay access denied", TransientDeliveryError, False),  # our setup, not the address
    ("rcpt", "550 5.7.1 Client host blocked using zen.spamhaus.org", TransientDeliveryError, False),
    ("rcpt", "552 5.2.2 Mailbox full", TransientDeliveryError, False),  # a soft bounce
    ("content", "550 5.1.1 no such user", PermanentDeliveryError, True),  # a server checking recipients late
    ("content", "552 5.3.4 Message too big", RejectedMessageError, False),
    ("content", "554 Transaction failed", RejectedMessageError, False),
    ("content", "550 5.7.26 Unauthenticated email is not accepted (DMARC)", TransientDeliveryError, False),
    # A relay refusing us without an enhanced code: our settings, never the address,
    # or a misconfigured relay would suppress the whole list.
    ("rcpt", "550 relay not permitted", TransientDeliveryError, False),
    ("rcpt", "554 Relay access denied", TransientDeliveryError, False),
    ("rcpt", "550 Relaying denied. Proper authentication required.", TransientDeliveryError, False),
    ("rcpt", "553 sorry, that domain isn't in my list of allowed rcpthosts", TransientDeliveryError, False),
    ("rcpt", "530 Authentication required", TransientDeliveryError, False),
    ("rcpt", "535 Authentication credentials invalid", TransientDeliveryError, False),
    ("rcpt", "530 5.7.0 Must issue a STARTTLS command first", TransientDeliveryError, False),
    ("rcpt", "550 5.7.8 Authentication credentials invalid", TransientDeliveryError, False),
    ("content", "530 Authentication required", TransientDeliveryError, False),
    ("rcpt", "550 No such user", PermanentDeliveryError, True),
    ("rcpt", "551 User not local; please try <bob@elsewhere.example>", PermanentDeliveryError, True),
    ("rcpt", "553 5.1.3 mailbox name not allowed", PermanentDeliveryError, True),
])
def test_a_refusal_is_sorted_by_its_enhanced_code_and_only_a_bad_address_suppresses(
        server, message, stage, reply, expected, suppresses):
    handler, port = server
    (handler.refuse if stage == "rcpt" else handler.refuse_content)["bob@example.org"] = reply
    with SmtpTransport(SmtpConfig("127.0.0.1", port)) as smtp:
        with pytest.raises(DeliveryError) as refused:
            smtp.send(message, "alice@news.example", "bob@example.org")
        assert type(refused.value) is expected and refused.value.suppresses is suppresses
        assert reply in str(refused.value)
        assert smtp.send(message, "alice@news.example", "carol@example.org") == message.message_id  # goes on
    assert [r.recipients for r in handler.received] == [["carol@example.org"]]


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-command-at-a-time"])
def test_a_message_whose_answer_never_comes_is_in_doubt_and_not_sent_again(message, pipelining):
    # The server has the whole message, so it may have delivered it: the transport
    # gives up after its timeout and does not reconnect to send it a second time.
    with SilentAfterData() as server:
        outcome: list[BaseException] = []

        def send() -> None:
            try:
                with SmtpTransport(SmtpConfig("127.0.0.1", server.port, timeout=0.5)) as smtp:
                    # An address smtplib must quote takes the one-command-at-a-time path.
                    smtp.send(message, "alice@news.example", "bob@example.org" if pipelining else "bob smith@example.org")
            except BaseException as exc:  # noqa: BLE001 - the test looks at it below
                outcome.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        sender.join(20)  # a liveness bound, far above the 0.5 s timeout
        assert not sender.is_alive(), "the send waited past its timeout"
    assert len(outcome) == 1 and isinstance(outcome[0], UnconfirmedDeliveryError), outcome
    assert "may have been delivered" in str(outcome[0])
    assert (server.taken, server.connections) == (1, 1)


def test_a_plain_email_message_takes_the_same_path(server):
    handler, port = server
    plain = EmailMessage()
    plain["From"], plain["To"], plain["Subject"] = "alice@news.example", "bob@example.org", "Plain"
    plain["Message-ID"] = "<plain-1@news.example>"
    plain.set_content("Hello from a plain message")
    with SmtpTransport(SmtpConfig("127.0.0.1", port)) as smtp:
        assert smtp.send(plain, "alice@news.example", "bob@example.org") == "<plain-1@news.example>"
    (got,) = handler.received
    assert got.message["Subject"] == "Plain" and got.message.get_payload().strip() == "Hello from a plain message"


def test_a_plain_email_message_whose_answer_never_comes_is_in_doubt_too():
    plain = EmailMessage()
    plain["From"], plain["To"], plain["Subject"] = "alice@news.example", "bob@example.org", "Plain"
    plain.set_content("Hello")
    with SilentAfterData() as server:
        with SmtpTransport(SmtpConfig("127.0.0.1", server.port, timeout=0.5)) as smtp:
            with pytest.raises(UnconfirmedDeliveryError):
                smtp.send(plain, "alice@news.example", "bob@example.org")
    assert (server.taken, server.connections) == (1, 1)
