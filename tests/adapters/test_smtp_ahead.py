"""The SMTP transport sending the next message's envelope with the current
message's content (``SmtpTransport.expect``), against a local aiosmtpd: every
message still arrives once and whole, a wrong guess costs the connection and
never a message, and the envelope's refusals reach their own message as usual."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from delivery.errors import PermanentDeliveryError, RejectedMessageError, TransientDeliveryError, UnconfirmedDeliveryError
from delivery.smtp import SmtpConfig, SmtpTransport
from tests.support.smtp import RecordingHandler, SilentAfterData, free_port

SENDER = "alice@news.example"


@dataclass
class Handler(RecordingHandler):
    pipelining: bool = True
    greetings: int = 0  # one EHLO per connection
    recipients_seen: list[str] = field(default_factory=list)  # every RCPT, in the order they came

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        self.greetings += 1
        return responses[:-1] + ["250-PIPELINING"] + responses[-1:] if self.pipelining else responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.recipients_seen.append(address)
        return await super().handle_RCPT(server, session, envelope, address, options)


@pytest.fixture
def handler() -> Iterator[Handler]:
    handler = Handler()
    handler.port = free_port()  # type: ignore[attr-defined]
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)  # type: ignore[attr-defined]
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


def transport(handler: Handler, **config: Any) -> SmtpTransport:
    return SmtpTransport(SmtpConfig("127.0.0.1", handler.port, **config))  # type: ignore[attr-defined]


def send_all(smtp: SmtpTransport, message: EmailMessage, recipients: list[str]) -> None:
    """As a send batch does: each message sent with the next one announced."""
    for index, recipient in enumerate(recipients):
        after = recipients[index + 1] if index + 1 < len(recipients) else None
        smtp.expect(None if after is None else (message, SENDER, after))
        smtp.send(message, SENDER, recipient)


def wait_for_rcpt(handler: Handler, address: str) -> bool:
    # The server reads the envelope sent ahead right after it answers the content.
    deadline = threading.Event()
    for _ in range(100):
        if address in handler.recipients_seen:
            return True
        deadline.wait(0.02)
    return False


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-command-at-a-time"])
def test_every_message_arrives_once_in_order_over_one_connection(handler, message, pipelining):
    handler.pipelining = pipelining
    recipients = [f"reader{i}@example.org" for i in range(6)]
    with transport(handler) as smtp:
        send_all(smtp, message, recipients)
    assert [r.recipients for r in handler.received] == [[r] for r in recipients]
    assert all(r.message["Message-ID"] == message.message_id for r in handler.received)
    assert handler.greetings == 1


def test_the_next_envelope_goes_out_with_the_content_and_is_dropped_unused_at_close(handler, message):
    with transport(handler) as smtp:
        smtp.expect((message, SENDER, "next@example.org"))
        smtp.send(message, SENDER, "bob@example.org")
        # Not yet sent, but its recipient already reached the server: the envelope went ahead.
        assert wait_for_rcpt(handler, "next@example.org")
    # Closed while its transaction waited for content: the server discards it.
    assert [r.recipients for r in handler.received] == [["bob@example.org"]]


def test_a_server_without_pipelining_gets_no_envelope_ahead(handler, message):
    handler.pipelining = False
    with transport(handler) as smtp:
        smtp.expect((message, SENDER, "next@example.org"))
        smtp.send(message, SENDER, "bob@example.org")
        assert "next@example.org" not in handler.recipients_seen


def test_a_wrong_guess_costs_the_connection_not_a_message(handler, message):
    with transport(handler) as smtp:
        smtp.expect((message, SENDER, "guessed@example.org"))
        smtp.send(message, SENDER, "bob@example.org")
        assert wait_for_rcpt(handler, "guessed@example.org")
        smtp.send(message, SENDER, "carol@example.org")  # another message came instead
        smtp.send(message, SENDER, "dave@example.org")
    assert [r.recipients for r in handler.received] == [["bob@example.org"], ["carol@example.org"],
                                                        ["dave@example.org"]]
    assert handler.greetings == 2


def test_a_refused_envelope_sent_ahead_meets_its_message_with_the_same_error(handler, message):
    handler.refuse = {"gone@example.org": "550 5.1.1 no such user"}
    with transport(handler) as smtp:
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
def test_a_refused_content_leaves_the_next_message_whole(handler, message, reply, error):
    # No RSET may follow a refused content once the next envelope waits for its
    # own: the server would read it as the first line of that message.
    handler.refuse_content = {"bob@example.org": reply}
    with transport(handler) as smtp:
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
