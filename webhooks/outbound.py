"""Delivering webhook calls: HMAC-signed POSTs with retries and backoff.

Signature header ``X-Eseq-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>">`` with the account's webhook secret (accounts.webhook_secret), so a
receiver can verify the sender and reject replays older than a few minutes. In
the grace period after a rotation a second ``v1=`` follows, made with the old
secret (Stripe's scheme): a receiver accepts the call when any ``v1`` matches, so
it verifies with either secret while it switches over. The same claim/record
discipline as the email outbox: claim in one transaction, call outside any, record
in another.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, or_, update
from sqlalchemy.orm import Session

from accounts.webhook_secret import StoredSecrets, stored_secrets
from core.backoff import backoff
from core.netguard import UnsafeTargetError, check_target, pinned_opener
from core.reasons import printable
from core.redispatch import OutboxRedispatch
from models import EventDelivery, WebhookDelivery

LEASE = timedelta(minutes=2)
DISPATCH_LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 10
TIMEOUT_SECONDS = 10.0


SIGNATURE_HEADER = "X-Eseq-Signature"
_UNSTORED = StoredSecrets(None, None, None)


def sign(secrets: tuple[str, ...], body: bytes, timestamp: int) -> str:
    """The signature header's value: one ``v1`` per secret in force, current first."""
    signed = f"{timestamp}.".encode() + body
    return ",".join([f"t={timestamp}"] + [
        "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest() for secret in secrets])


@dataclass
class Call:
    delivery_id: int
    account_id: int
    attempts: int
    url: str
    body: bytes
    signing: StoredSecrets


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


def _opener(addresses: list[str]) -> urllib.request.OpenerDirector:
    return pinned_opener(addresses, _NoRedirect)


def claim_rows(session: Session, table: type[WebhookDelivery] | type[EventDelivery], ids: list[int], now: datetime,
               lease: timedelta, *columns: Any) -> list[Row[Any]]:
    """Take the given rows of ``table`` (webhook steps' deliveries or event
    subscriptions' batches) that are due, or whose lease ran out, for one call each.
    The conditional UPDATE is the claim, and its RETURNING carries what the call needs
    (id, account, attempts as incremented, then ``columns``), so claiming is one round
    trip, not two."""
    sendable = or_(
        and_(table.status.in_(("queued", "deferred")), or_(table.retry_at.is_(None), table.retry_at <= now)),
        and_(table.status == "sending", table.claimed_until < now),
    )
    return list(session.execute(
        update(table).where(table.id.in_(ids), sendable)
        .values(status="sending", claimed_until=now + lease, attempts=table.attempts + 1)
        .returning(table.id, table.account_id, table.attempts, *columns)
        .execution_options(synchronize_session=False)).all())


def claim(session: Session, ids: list[int], now: datetime, lease: timedelta = LEASE) -> list[Call]:
    """Take the given deliveries that are due (or whose lease ran out) for one call each;
    the accounts' signing secrets are one more query per batch, not one per call."""
    claimed = claim_rows(session, WebhookDelivery, ids, now, lease, WebhookDelivery.url, WebhookDelivery.payload)
    # The secrets as of the claim; whether an old one is still in its grace period
    # is judged at the call's own time.
    signing = stored_secrets(session, [r.account_id for r in claimed]) if claimed else {}
    return [Call(r.id, r.account_id, r.attempts, r.url, json.dumps(r.payload, separators=(",", ":")).encode(),
                 signing.get(r.account_id, _UNSTORED)) for r in claimed]


def call(c: Call, secret_key: str, now: datetime, allow_private: bool) -> CallResult:
    try:
        addresses = check_target(c.url, allow_private)
    except UnsafeTargetError as exc:
        return CallResult(c.delivery_id, c.attempts, None, str(exc), permanent=True)
    request = urllib.request.Request(c.url, data=c.body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "eseq-webhooks/1",
        SIGNATURE_HEADER: sign(c.signing.in_force(secret_key, c.account_id, now), c.body, int(now.timestamp())),
        "X-Eseq-Delivery": str(c.delivery_id)})
    try:
        with _opener(addresses).open(request, timeout=TIMEOUT_SECONDS) as response:
            return CallResult(c.delivery_id, c.attempts, response.status, None)
    except urllib.error.HTTPError as exc:
        # 4xx other than 408/409/425/429 means the receiver refuses this call; retrying won't help.
        permanent = 400 <= exc.code < 500 and exc.code not in (408, 409, 425, 429)
        return CallResult(c.delivery_id, c.attempts, exc.code, f"HTTP {exc.code}", permanent=permanent)
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        # HTTPException: a receiver answering something that is not HTTP (BadStatusLine);
        # ValueError: a URL http.client refuses. One bad receiver must not sink the batch.
        return CallResult(c.delivery_id, c.attempts, None, f"{type(exc).__name__}: {exc}"[:500])


def record(session: Session, results: list[CallResult], now: datetime,
           table: type[WebhookDelivery] | type[EventDelivery] = WebhookDelivery) -> None:
    """Each call's outcome on its row of ``table`` (webhook steps' calls, or event
    subscriptions' batches: webhooks.event_calls), if its claim still holds."""
    for r in results:
        # A receiver's answer is quoted in the error (BadStatusLine): a NUL in it
        # would fail this UPDATE, and with it the whole batch's record.
        error = printable(r.error, 500) if r.error is not None else None
        owned = and_(table.id == r.delivery_id, table.status == "sending")
        if error is None:
            values = {"status": "delivered", "response_status": r.status, "delivered_at": now, "error": None,
                      "claimed_until": None}
        elif r.permanent or r.attempts >= MAX_ATTEMPTS:
            values = {"status": "failed", "response_status": r.status, "error": error, "claimed_until": None}
        else:
            delay = backoff(r.attempts)
            values = {"status": "deferred", "response_status": r.status, "error": error,
                      "retry_at": now + delay, "claimed_until": now + delay}
        session.execute(update(table).where(owned).values(**values),
                        execution_options={"synchronize_session": False})


_REDISPATCH = OutboxRedispatch("webhook_deliveries")


def claim_for_dispatch(session: Session, now: datetime, limit: int, lease: timedelta = DISPATCH_LEASE) -> list[int]:
    return _REDISPATCH.claim(session, now, limit, lease)
