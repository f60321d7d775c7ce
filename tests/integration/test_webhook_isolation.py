"""One webhook call whose outcome the database cannot store does not lose the
outcomes of the rest of its batch (which would then be called again)."""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.integration.test_webhooks import T0, Receiver, attempt, row, webhook_step


class NulStatusLine:
    """A receiver answering every request with a status line carrying a NUL byte:
    http.client quotes that line in BadStatusLine, and PostgreSQL refuses NUL in text."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.calls = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                self.calls += 1
                conn.sendall(b"HTTP/1.1 2\x0000 OK\r\n\r\n")

    def __enter__(self) -> NulStatusLine:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


@pytest.fixture
def nul_receiver() -> Iterator[NulStatusLine]:
    with NulStatusLine() as r:
        yield r


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def test_a_receiver_answering_a_nul_byte_defers_its_row_and_the_others_outcomes_are_recorded(receiver, nul_receiver):
    _, _, [bad, good] = webhook_step([f"http://127.0.0.1:{nul_receiver.port}/hook", receiver.url("/fine")])

    attempt([bad, good], T0)

    delivered = row(good)
    assert (delivered.status, delivered.attempts) == ("delivered", 1)
    deferred = row(bad)
    assert deferred.status == "deferred" and "BadStatusLine" in deferred.error
    assert "\x00" not in deferred.error and "\\x00" in deferred.error
    assert len(receiver.received()) == 1 and nul_receiver.calls == 1
