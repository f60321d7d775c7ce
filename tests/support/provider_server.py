"""A stand-in provider: an HTTP server on 127.0.0.1 (free port, own thread) that
records each request exactly as it arrived and answers with whatever the test
told it to."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Recorded:
    method: str
    path: str
    headers: Message
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class ProviderServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.next = Answer()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                owner.requests.append(Recorded("POST", self.path, self.headers, self.rfile.read(length)))
                answer = owner.next
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:
                    pass  # the client gave up (the timeout test)

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def answer(self, status: int, body: bytes | str = b"", headers: dict[str, str] | None = None,
               delay: float = 0.0) -> None:
        self.next = Answer(status, body.encode() if isinstance(body, str) else body, headers or {}, delay)

    @property
    def last(self) -> Recorded:
        assert self.requests, "the adapter made no request"
        return self.requests[-1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
