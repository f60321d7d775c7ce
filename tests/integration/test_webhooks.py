"""Webhook steps on real parts: real PostgreSQL, and a real HTTP receiver on loopback
(http.server in a thread) that records every request. Time is injected by calling
webhooks.outbound's claim -> call -> record directly, except for the Celery test."""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from models import Account, WebhookDelivery, db
from models.base import utcnow
from sequencing.claims import claim_due_enrollments
from sequencing.engine import advance_enrollments
from settings import get_settings
from tests.support import engine, factories
from tests.support.waiting import wait_for
from webhooks import outbound

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every request and answers each path
    with a status set by the test (200 by default; 3xx carry a Location, "garbage"
    answers bytes that are not HTTP)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.answers: dict[str, Any] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append(Request("POST", self.path, dict(self.headers), body))
                    answer = receiver.answers.get(self.path, 200)
                if answer == "garbage":
                    self.wfile.write(b"this is not HTTP\r\n\r\n")
                    return
                self.send_response(answer)
                if 300 <= answer < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST  # a followed redirect would arrive as a GET

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def received(self, path: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def webhook_step(urls: list[str], now: datetime = T0, payload: dict[str, Any] | None = None
                 ) -> tuple[int, list[int], list[int]]:
    """One subscriber per URL through a one-step webhook sequence, advanced at ``now``:
    (account id, subscriber ids, webhook delivery ids in URL order)."""
    acct = factories.account()
    subs, ids = engine.webhook_calls(acct, urls, now, payload or {"k": 1})
    assert len(ids) == len(urls)
    return acct, subs, ids


def attempt(ids: list[int], now: datetime, allow_private: bool = True) -> list[outbound.CallResult]:
    """What the webhooks.deliver task does, at ``now``."""
    with db.session_scope() as s:
        calls = outbound.claim(s, ids, now)
    results = [outbound.call(c, get_settings().secret_key, now, allow_private) for c in calls]
    with db.session_scope() as s:
        outbound.record(s, results, now)
    return results


def row(delivery_id: int) -> WebhookDelivery:
    with db.session_scope() as s:
        found = s.get(WebhookDelivery, delivery_id)
        s.expunge(found)
        return found


def expected_signature(account_id: int, timestamp: str, body: bytes) -> str:
    """The documented scheme, recomputed here rather than taken from outbound, with
    the account's stored secret (the one GET /account/webhook-secret shows)."""
    with db.session_scope() as s:
        secret = s.get(Account, account_id).webhook_secret
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def test_a_webhook_step_posts_its_payload_once_with_a_signature_the_receiver_can_verify(receiver):
    acct, [sub], [hook] = webhook_step([receiver.url()], payload={"plan": "pro", "n": 3})

    attempt([hook], T0)
    attempt([hook], T0 + timedelta(hours=1))  # a delivered row is not called again

    [req] = receiver.received()
    assert req.method == "POST" and req.path == "/hook"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["X-Eseq-Delivery"] == str(hook)
    body = json.loads(req.body)
    assert body["event"] == "sequence.webhook_step"
    assert body["data"] == {"plan": "pro", "n": 3}
    assert body["subscriber"]["id"] == sub and body["subscriber"]["email"] == "user0@example.test"
    fields = dict(part.split("=", 1) for part in req.headers["X-Eseq-Signature"].split(","))
    assert fields["t"] == str(int(T0.timestamp()))
    assert hmac.compare_digest(fields["v1"], expected_signature(acct, fields["t"], req.body))
    assert not hmac.compare_digest(fields["v1"], expected_signature(factories.account("Bob"), fields["t"], req.body))
    delivered = row(hook)
    assert (delivered.status, delivered.response_status, delivered.attempts) == ("delivered", 200, 1)
    assert delivered.delivered_at == T0 and delivered.error is None


def test_a_receiver_answering_500_is_retried_after_the_backoff_and_not_before(receiver):
    _, _, [hook] = webhook_step([receiver.url()])
    receiver.answers["/hook"] = 500

    attempt([hook], T0)
    deferred = row(hook)
    assert (deferred.status, deferred.response_status, deferred.error) == ("deferred", 500, "HTTP 500")
    assert deferred.retry_at > T0 + timedelta(seconds=20)  # 30 s, jittered +-20 %

    assert attempt([hook], deferred.retry_at - timedelta(seconds=1)) == []
    assert len(receiver.received()) == 1

    receiver.answers["/hook"] = 200
    attempt([hook], deferred.retry_at)
    assert len(receiver.received()) == 2
    delivered = row(hook)
    assert (delivered.status, delivered.response_status, delivered.attempts) == ("delivered", 200, 2)


@pytest.mark.parametrize("status", [400, 410])
def test_a_4xx_answer_fails_the_call_at_once_without_a_retry(receiver, status):
    _, _, [hook] = webhook_step([receiver.url()])
    receiver.answers["/hook"] = status

    attempt([hook], T0)
    attempt([hook], T0 + timedelta(days=1))
    with db.session_scope() as s:
        assert outbound.claim_for_dispatch(s, T0 + timedelta(days=1), 100) == []

    assert len(receiver.received()) == 1
    failed = row(hook)
    assert (failed.status, failed.response_status, failed.error) == ("failed", status, f"HTTP {status}")
    assert failed.retry_at is None


@pytest.mark.parametrize("status", [408, 429])
def test_a_timeout_or_rate_limit_answer_is_retried(receiver, status):
    _, _, [hook] = webhook_step([receiver.url()])
    receiver.answers["/hook"] = status
    attempt([hook], T0)
    assert row(hook).status == "deferred"


def test_a_redirect_is_not_followed_and_fails_that_attempt(receiver):
    _, _, [hook] = webhook_step([receiver.url("/start")])
    receiver.answers["/start"] = 302

    [result] = attempt([hook], T0)

    assert [r.path for r in receiver.received()] == ["/start"]
    assert result.error == "HTTP 302"
    deferred = row(hook)
    assert (deferred.status, deferred.response_status) == ("deferred", 302)
    assert deferred.delivered_at is None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.0.0.1", "169.254.169.254", "[::1]"])
def test_without_allow_private_a_non_public_target_is_refused_and_never_called(receiver, host):
    _, _, [hook] = webhook_step([receiver.url(host=host)])

    [result] = attempt([hook], T0, allow_private=False)

    assert receiver.received() == []
    assert result.permanent
    failed = row(hook)
    assert failed.status == "failed" and failed.response_status is None
    assert "non-public address" in failed.error


def test_a_receiver_that_does_not_speak_http_defers_its_row_and_the_batch_still_records(receiver):
    _, _, [bad, good] = webhook_step([receiver.url("/garbage"), receiver.url("/fine")])
    receiver.answers["/garbage"] = "garbage"

    attempt([bad, good], T0)

    assert row(good).status == "delivered"
    deferred = row(bad)
    assert deferred.status == "deferred" and "BadStatusLine" in deferred.error


def test_a_url_with_an_impossible_port_fails_its_row_not_the_batch(receiver):
    _, _, [bad, good] = webhook_step(["http://127.0.0.1:99999/x", receiver.url("/fine")])

    attempt([bad, good], T0)

    assert row(good).status == "delivered"
    failed = row(bad)
    assert failed.status == "failed" and "malformed" in failed.error


def test_the_call_connects_to_the_address_the_guard_checked_not_a_second_lookup(receiver, monkeypatch):
    # DNS rebinding: the name answers one address to the guard and another to the
    # connection. Both are loopback here (allow_private), but only the first listens.
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "127.0.0.2", "127.0.0.2", "127.0.0.2"])

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":
            return real(next(answers), port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    _, _, [hook] = webhook_step([receiver.url(host="rebind.test")])

    attempt([hook], T0)

    [req] = receiver.received()
    assert req.headers["Host"] == f"rebind.test:{receiver.port}"
    assert row(hook).status == "delivered"


def test_a_webhook_step_is_delivered_once_through_a_celery_worker(receiver, private_providers_allowed, worker):
    from tasks.sequencing import enqueue_webhooks

    acct = factories.account()
    seq = factories.sequence(acct, [{"type": "webhook", "url": receiver.url(), "payload": {"via": "celery"}},
                                    {"type": "delay", "seconds": 3600}])
    subs = factories.subscribers(acct, 3)
    now = utcnow()
    factories.enroll(acct, seq, subs, now)
    with db.session_scope() as s:
        claimed = claim_due_enrollments(s, now, 100)
    with db.session_scope() as s:
        ids = advance_enrollments(s, claimed, now).webhook_ids
    assert len(ids) == 3

    enqueue_webhooks(ids)

    def delivered() -> bool:
        with db.session_scope() as s:
            return set(s.scalars(select(WebhookDelivery.status))) == {"delivered"}

    wait_for(delivered, timeout=30, what="three delivered webhook calls")
    requests = receiver.received()
    assert len(requests) == 3
    assert sorted(json.loads(r.body)["subscriber"]["id"] for r in requests) == sorted(subs)
    for r in requests:
        fields = dict(part.split("=", 1) for part in r.headers["X-Eseq-Signature"].split(","))
        assert hmac.compare_digest(fields["v1"], expected_signature(acct, fields["t"], r.body))
    with db.session_scope() as s:
        assert set(s.scalars(select(WebhookDelivery.response_status))) == {200}


def test_the_tick_redispatches_a_sending_row_whose_lease_expired_and_it_is_called_once(receiver):
    _, _, [hook] = webhook_step([receiver.url()])
    with db.session_scope() as s:
        assert [c.delivery_id for c in outbound.claim(s, [hook], T0, timedelta(minutes=2))] == [hook]
    # the worker dies here: the row stays "sending" under its lease, never called

    with db.session_scope() as s:
        assert outbound.claim_for_dispatch(s, T0 + timedelta(minutes=1), 100) == []
    later = T0 + timedelta(minutes=3)
    with db.session_scope() as s:
        assert outbound.claim_for_dispatch(s, later, 100) == [hook]
    assert row(hook).status == "queued"
    with db.session_scope() as s:  # dispatched: not dispatched again within its lease
        assert outbound.claim_for_dispatch(s, later + timedelta(seconds=1), 100) == []

    attempt([hook], later)
    attempt([hook], later + timedelta(seconds=5))  # a duplicate task finds nothing to claim

    assert len(receiver.received()) == 1
    delivered = row(hook)
    assert (delivered.status, delivered.attempts) == ("delivered", 2)
