"""Delivering webhook calls: HMAC-signed POSTs with retries and backoff.

Signature header ``X-Eseq-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>">`` with the account's webhook secret, so a receiver can verify the
sender and reject replays older than a few minutes. The same claim/record
discipline as the email outbox: claim in one transaction, call outside any, record
in another.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update
from sqlalchemy.orm import Session

from delivery.outbox import backoff
from models import WebhookDelivery
from sequencing.claims import OutboxRedispatch
from sequencing.reasons import printable
from webhooks.guard import UnsafeTargetError, check_target

LEASE = timedelta(minutes=2)
DISPATCH_LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 10
TIMEOUT_SECONDS = 10.0


def account_secret(secret_key: str, account_id: int) -> str:
    """The per-account signing secret, derived so that it needs no storage."""
    return hmac.new(secret_key.encode(), f"webhook-signing:{account_id}".encode(), hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass
class Call:
    delivery_id: int
    account_id: int
    attempts: int
    url: str
    body: bytes


@dataclass
class CallResult:
    delivery_id: int
    attempts: int
    status: int | None
    error: str | None
    permanent: bool = False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def _pinned(http_class, address: str):  # type: ignore[no-untyped-def]
    """``http_class`` connecting to ``address`` whatever its host name resolves to
    now; the Host header, TLS SNI and certificate check still use the name."""
    def connection(*args, **kwargs):  # type: ignore[no-untyped-def]
        conn = http_class(*args, **kwargs)
        conn._create_connection = lambda target, *a, **kw: socket.create_connection((address, target[1]), *a, **kw)
        return conn
    return connection


class _PinnedHandler:
    """Connect to the address the SSRF guard checked, not to a second lookup's
    answer (DNS rebinding). Through an operator's proxy the proxy connects."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def do_open(self, http_class, req, **kwargs):  # type: ignore[no-untyped-def]
        if not (req.has_proxy() or getattr(req, "_tunnel_host", None)):
            http_class = _pinned(http_class, self.address)
        return super().do_open(http_class, req, **kwargs)  # type: ignore[misc]


class _PinnedHTTPHandler(_PinnedHandler, urllib.request.HTTPHandler):
    pass


class _PinnedHTTPSHandler(_PinnedHandler, urllib.request.HTTPSHandler):
    pass


def _opener(address: str) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect, _PinnedHTTPHandler(address), _PinnedHTTPSHandler(address))


def claim(session: Session, ids: list[int], now: datetime, lease: timedelta = LEASE) -> list[Call]:
    """Take the given deliveries that are due (or whose lease ran out) for one call each."""
    sendable = or_(
        and_(WebhookDelivery.status.in_(("queued", "deferred")),
             or_(WebhookDelivery.retry_at.is_(None), WebhookDelivery.retry_at <= now)),
        and_(WebhookDelivery.status == "sending", WebhookDelivery.claimed_until < now),
    )
    # The conditional UPDATE is the claim, and its RETURNING carries what the call
    # needs (attempts as incremented), so claiming is one round trip, not two.
    rows = session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id.in_(ids), sendable)
        .values(status="sending", claimed_until=now + lease, attempts=WebhookDelivery.attempts + 1)
        .returning(WebhookDelivery.id, WebhookDelivery.account_id, WebhookDelivery.attempts,
                   WebhookDelivery.url, WebhookDelivery.payload)
        .execution_options(synchronize_session=False))
    return [Call(r.id, r.account_id, r.attempts, r.url, json.dumps(r.payload, separators=(",", ":")).encode())
            for r in rows]


def call(c: Call, secret_key: str, now: datetime, allow_private: bool) -> CallResult:
    try:
        addresses = check_target(c.url, allow_private)
    except UnsafeTargetError as exc:
        return CallResult(c.delivery_id, c.attempts, None, str(exc), permanent=True)
    request = urllib.request.Request(c.url, data=c.body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "eseq-webhooks/1",
        "X-Eseq-Signature": sign(account_secret(secret_key, c.account_id), c.body, int(now.timestamp())),
        "X-Eseq-Delivery": str(c.delivery_id)})
    try:
        with _opener(addresses[0]).open(request, timeout=TIMEOUT_SECONDS) as response:
            return CallResult(c.delivery_id, c.attempts, response.status, None)
    except urllib.error.HTTPError as exc:
        # 4xx other than 408/409/425/429 means the receiver refuses this call; retrying won't help.
        permanent = 400 <= exc.code < 500 and exc.code not in (408, 409, 425, 429)
        return CallResult(c.delivery_id, c.attempts, exc.code, f"HTTP {exc.code}", permanent=permanent)
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        # HTTPException: a receiver answering something that is not HTTP (BadStatusLine);
        # ValueError: a URL http.client refuses. One bad receiver must not sink the batch.
        return CallResult(c.delivery_id, c.attempts, None, f"{type(exc).__name__}: {exc}"[:500])


def record(session: Session, results: list[CallResult], now: datetime) -> None:
    for r in results:
        # A receiver's answer is quoted in the error (BadStatusLine): a NUL in it
        # would fail this UPDATE, and with it the whole batch's record.
        error = printable(r.error, 500) if r.error is not None else None
        owned = and_(WebhookDelivery.id == r.delivery_id, WebhookDelivery.status == "sending")
        if error is None:
            values = {"status": "delivered", "response_status": r.status, "delivered_at": now, "error": None,
                      "claimed_until": None}
        elif r.permanent or r.attempts >= MAX_ATTEMPTS:
            values = {"status": "failed", "response_status": r.status, "error": error, "claimed_until": None}
        else:
            delay = backoff(r.attempts)
            values = {"status": "deferred", "response_status": r.status, "error": error,
                      "retry_at": now + delay, "claimed_until": now + delay}
        session.execute(update(WebhookDelivery).where(owned).values(**values),
                        execution_options={"synchronize_session": False})


_REDISPATCH = OutboxRedispatch("webhook_deliveries")


def claim_for_dispatch(session: Session, now: datetime, limit: int, lease: timedelta = DISPATCH_LEASE) -> list[int]:
    return _REDISPATCH.claim(session, now, limit, lease)
