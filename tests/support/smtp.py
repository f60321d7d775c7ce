"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, and can
be told to answer with a given reply code or to wait before answering."""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: Message


@dataclass
class RecordingHandler:
    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> SMTP reply to its RCPT
    refuse_content: dict[str, str] = field(default_factory=dict)  # recipient -> reply to its message's final dot
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            time.sleep(self.delay)
        refusals = [self.refuse_content[r] for r in envelope.rcpt_tos if r in self.refuse_content]
        if refusals:
            return refusals[0]
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted"

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [r.message for r in self.received if address in r.recipients]


@dataclass
class PipeliningHandler(RecordingHandler):
    """Offers PIPELINING (as Postfix and the big providers do) unless told not to,
    and counts connections (one EHLO each) and every RCPT, in the order they came."""

    pipelining: bool = True
    greetings: int = 0
    recipients_seen: list[str] = field(default_factory=list)

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        self.greetings += 1
        return responses[:-1] + ["250-PIPELINING"] + responses[-1:] if self.pipelining else responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.recipients_seen.append(address)
        return await super().handle_RCPT(server, session, envelope, address, options)


class SmtpServer:
    def __init__(self, port: int | None = None, handler: RecordingHandler | None = None) -> None:
        self.handler = handler or RecordingHandler()
        self.port = port or free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.controller.stop()


class SilentAfterData:
    """An SMTP server that takes each whole message, final dot included, and then
    never answers it: the provider that may have delivered what it went quiet on.
    ``taken`` counts the messages that reached their dot, ``connections`` the
    connections accepted (a client that sent again would show in both)."""

    def __init__(self) -> None:
        # Listening before the thread starts: a refused connection would also end
        # in a transient error, without the lost answer being tried at all.
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self.taken = 0
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> SilentAfterData:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _serve(self) -> None:
        with self._listener:
            while not self._stop.is_set():
                try:
                    conn, _ = self._listener.accept()
                except TimeoutError:
                    continue
                self.connections += 1
                threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 silent ESMTP\r\n")
            in_data = False
            for line in lines:
                if in_data:
                    if line == b".\r\n":
                        self.taken += 1
                        self._stop.wait(30)  # the answer never comes
                        return
                elif line.upper().startswith(b"EHLO"):
                    conn.sendall(b"250-silent\r\n250 PIPELINING\r\n")
                elif line.upper().startswith(b"DATA"):
                    conn.sendall(b"354 go on\r\n")
                    in_data = True
                else:  # MAIL, RCPT, RSET
                    conn.sendall(b"250 ok\r\n")
