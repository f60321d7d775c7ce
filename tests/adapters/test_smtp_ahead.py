"""The SMTP transport sending the next message's envelope with the current
message's content (``SmtpTransport.expect``), against a local aiosmtpd: every
message still arrives once and whole, a wrong guess costs the connection and
never a message, and the envelope's refusals reach their own message as usual."""
from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from delivery.errors import PermanentDeliveryError, RejectedMessageError, TransientDeliveryError, UnconfirmedDeliveryError
from delivery.smtp import SmtpConfig, SmtpTransport
from tests.support.smtp import PipeliningHandler, SilentAfterData, SmtpServer

SENDER = "alice@news.example"


@pytest.fixture
def server() -> Iterator[tuple[PipeliningHandler, int]]:
    handler = PipeliningHandler()
    with SmtpServer(handler=handler) as running:
        yield handler, running.port


def transport(port: int) -> SmtpTransport:
    return SmtpTransport(SmtpConfig("127.0.0.1", port))


def send_all(smtp: SmtpTransport, message: EmailMessage, recipients: list[str]) -> None:
    """As a send batch does: each message sent with the next one announced."""
    for index, recipient in enumerate(recipients):
        after = recipients[index + 1] if index + 1 < len(recipients) else None
        smtp.expect(None if after is None else (message, SENDER, after))
        smtp.send(message, SENDER, recipient)


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-command-at-a-time"])
def test_every_message_arrives_once_in_order_over_one_connection(server, message, pipelining):
    handler, port = server
    handler.pipelining = pipelining
    recipients = [f"reader{i}@example.org" for i in range(6)]
    with transport(port) as smtp:
        send_all(smtp, message, recipients)
    assert [r.recipients for r in handler.received] == [[r] for r in recipients]
    assert all(r.message["Message-ID"] == message.message_id for r in handler.received)
    assert handler.greetings == 1


def test_the_next_envelope_goes_out_with_the_content_and_is_dropped_unused_at_close(server, message):
    handler, port = server
    with transport(port) as smtp:
        smtp.expect((message, SENDER, "next@example.org"))
        smtp.send(message, SENDER, "bob@example.org")
        # Not yet sent, but its RCPT was answered before send returned: the envelope went ahead.
        assert "next@example.org" in handler.recipients_seen
    # Closed while its transaction waited for content: the server discards it.
    assert [r.recipients for r in handler.received] == [["bob@example.org"]]


def test_a_server_without_pipelining_gets_no_envelope_ahead(server, message):
    handler, port = server
    handler.pipelining = False
    with transport(port) as smtp:
        smtp.expect((message, SENDER, "next@example.org"))
        smtp.send(message, SENDER, "bob@example.org")
        assert "next@example.org" not in handler.recipients_seen


def test_a_wrong_guess_costs_the_connection_not_a_message(server, message):
    handler, port = server
    with transport(port) as smtp:
        smtp.expect((message, SENDER, "guessed@example.org"))
        smtp.send(message, SENDER, "bob@example.org")
        assert "guessed@example.org" in handler.recipients_seen
        smtp.send(message, SENDER, "carol@example.org")  # another message came instead
        smtp.send(message, SENDER, "dave@example.org")
    assert [r.recipients for r in handler.received] == [["bob@example.org"], ["carol@example.org"],
                                                        ["dave@example.org"]]
    assert handler.greetings == 2


def test_a_refused_envelope_sent_ahead_meets_its_message_with_the_same_error(server, message):
    handler, port = server
    handler.refuse = {"gone@example.org": "550 5.1.1 no such user"}
    with transport(port) as smtp:
        send_all(smtp, message, ["bob@example.org"])
        smtp.expect((message, SENDER, "gone@example.org"))
        smtp.send(message, SENDER, "carol@example.org")
        with pytest.raises(PermanentDeliveryError, match="550 5.1.1"):
            smtp.send(message, SENDER, "gone@example.org")
        smtp.send(message, SENDER, "dave@example.org")
    assert [r.recipients for r in handler.received] == [["bob@example.org"], ["carol@example.org"],
                                                        ["dave@example.org"]]
    assert handler.greetings == 1


@pytest.mark.parametrize("reply, error", [("452 4.3.1 try later", TransientDeliveryError),
                                          ("554 5.6.0 content refused", RejectedMessageError)])
def test_a_refused_content_leaves_the_next_message_whole(server, message, reply, error):
    handler, port = server
    # No RSET may follow a refused content once the next envelope waits for its
    # own: the server would read it as the first line of that message.
    handler.refuse_content = {"bob@example.org": reply}
    with transport(port) as smtp:
        smtp.expect((message, SENDER, "carol@example.org"))
        with pytest.raises(error, match=reply.split()[0]):
            smtp.send(message, SENDER, "bob@example.org")
        smtp.send(message, SENDER, "carol@example.org")
    (got,) = handler.received
    assert got.recipients == ["carol@example.org"]
    assert got.message["Message-ID"] == message.message_id and not got.message.defects
    assert [p.get_payload(decode=True) for p in got.message.get_payload()] == [b"Hi Bob\r\n", b"<p>Hi Bob</p>\r\n"]
    assert handler.greetings == 1


def test_a_lost_answer_with_an_envelope_ahead_is_in_doubt_and_the_next_goes_on_a_new_connection(message):
    with SilentAfterData() as server:
        with SmtpTransport(SmtpConfig("127.0.0.1", server.port, timeout=0.5)) as smtp:
            smtp.expect((message, SENDER, "carol@example.org"))
            with pytest.raises(UnconfirmedDeliveryError):
                smtp.send(message, SENDER, "bob@example.org")
            with pytest.raises(UnconfirmedDeliveryError):  # the silent server takes it too, on a new connection
                smtp.send(message, SENDER, "carol@example.org")
        assert (server.taken, server.connections) == (2, 2)
