"""Fetching an SNS signing certificate from a real HTTP server on loopback: a
redirect is not followed to get it, only a certificate is cached, and which of
its host's answers are ours to retry (moved from tests/unit, which does no I/O)."""
from __future__ import annotations

import json
import socket
import threading
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from inbound import ses
from inbound.events import InboundRequest, VerificationError
from tests.api.test_provider_webhooks import SNS_CERT, TOPIC, ses_bounce, sns_envelope


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *_: Any) -> None:
        pass


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """An HTTP server on loopback in a thread, for as long as the block runs; its base URL."""
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def redirecting_server() -> Iterator[tuple[str, list[str]]]:
    """Answers /cert.pem with a redirect to /elsewhere.pem, which serves a body."""
    paths: list[str] = []

    class Handler(_Quiet):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            paths.append(self.path)
            if self.path == "/cert.pem":
                self.send_response(302)
                self.send_header("Location", "/elsewhere.pem")
                self.end_headers()
            else:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"not a certificate")

    with _serving(Handler) as base:
        yield base, paths


def test_fetching_the_certificate_does_not_follow_a_redirect(redirecting_server):
    base, paths = redirecting_server
    fetch = ses.fetch_certificate.__wrapped__  # past the cache
    with pytest.raises(urllib.error.HTTPError, match="302"):
        fetch(f"{base}/cert.pem")
    with pytest.raises(urllib.error.HTTPError, match="302"):
        ses.visit(f"{base}/cert.pem")
    assert paths == ["/cert.pem", "/cert.pem"]


@pytest.fixture
def certificate_host() -> Iterator[tuple[str, list[tuple[int, bytes]], list[str]]]:
    """Answers each GET with the next scripted (status, body) and records the path;
    the certificate cache is emptied afterwards."""
    answers: list[tuple[int, bytes]] = []
    paths: list[str] = []

    class Handler(_Quiet):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            paths.append(self.path)
            status, body = answers.pop(0)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    try:
        with _serving(Handler) as base:
            yield base, answers, paths
    finally:
        ses.fetch_certificate.cache_clear()


def test_only_a_certificate_that_loads_is_cached(certificate_host):
    base, answers, paths = certificate_host
    answers.extend([(200, b"<html>down for maintenance</html>"), (503, b""), (200, SNS_CERT)])
    url = f"{base}/SimpleNotificationService-1.pem"
    with pytest.raises(VerificationError):
        ses.fetch_certificate(url)
    with pytest.raises(urllib.error.HTTPError, match="503"):
        ses.fetch_certificate(url)
    assert ses.fetch_certificate(url) == SNS_CERT
    assert ses.fetch_certificate(url) == SNS_CERT
    assert len(paths) == 3  # the failures were asked again, the certificate once


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _verify_fetching_from(url: str) -> int:
    """The status a genuine-looking SES notification gets when its certificate is
    fetched (by the real fetcher) from ``url``."""
    body = json.dumps(sns_envelope(ses_bounce())).encode()
    try:
        ses.verify(InboundRequest(body), [{"webhook_topic_arns": [TOPIC]}], datetime.now(timezone.utc),
                   fetch_certificate=lambda _url: ses.fetch_certificate(url))
    except VerificationError as exc:
        return exc.status
    except ses.CertificateUnavailableError:
        return 503
    return 200


def test_a_certificate_its_host_does_not_have_is_a_401_and_no_answer_a_503(certificate_host):
    base, answers, paths = certificate_host
    answers.extend([(404, b"<Error><Code>NoSuchKey</Code></Error>"), (403, b"AccessDenied"), (200, b"not a cert"),
                    (500, b""), (502, b""), (404, b""), (200, SNS_CERT)])
    statuses = [_verify_fetching_from(f"{base}/x.pem") for _ in range(6)]
    assert statuses == [401, 401, 401, 503, 503, 401]
    assert _verify_fetching_from(f"http://127.0.0.1:{_closed_port()}/x.pem") == 503
    assert _verify_fetching_from(f"{base}/x.pem") == 200  # nothing that failed was kept
    assert len(paths) == 7
