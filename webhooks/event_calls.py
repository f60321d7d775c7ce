"""Calling event subscriptions: claim a batch, POST it signed, record the answer.

The call itself is a webhook step's (webhooks.outbound.call): the SSRF guard at
connect time, no redirects, the same signature header, made here with the
subscription's own secret rather than the account's. Retries follow the same
backoff (core.backoff) up to ``outbound.MAX_ATTEMPTS``, then the batch is
``failed`` and stays visible with its last error. A delivered batch keeps only
its events' ids and types (``record``).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from accounts.webhook_secret import StoredSecrets
from core.redispatch import OutboxRedispatch
from models import EventDelivery, EventSubscription
from webhooks import outbound
from webhooks.outbound import LEASE, Call, CallResult

_REDISPATCH = OutboxRedispatch("event_deliveries")


def claim(session: Session, ids: list[int], now: datetime, lease: timedelta = LEASE) -> list[Call]:
    """Take the given batches that are due (or whose lease ran out) for one call each."""
    claimed = outbound.claim_rows(session, EventDelivery, ids, now, lease, EventDelivery.subscription_id,
                                  EventDelivery.payload)
    if not claimed:
        return []
    # The URL and secret as they are now: a PATCH since the batch was made applies.
    targets = {s.id: s for s in session.scalars(select(EventSubscription).where(
        EventSubscription.id.in_({r.subscription_id for r in claimed})))}
    return [Call(r.id, r.account_id, r.attempts, targets[r.subscription_id].url,
                 json.dumps(r.payload, separators=(",", ":")).encode(),
                 StoredSecrets(targets[r.subscription_id].secret, None, None)) for r in claimed]


def record(session: Session, results: list[CallResult], now: datetime) -> None:
    """Record the calls (webhooks.outbound.record); a delivered batch then keeps only
    its events' ids and types. The receiver has the rest, and a copy of every
    person's events kept here for ever would be one more place erasure must search
    (audience.traces searches only batches not delivered)."""
    outbound.record(session, results, now, EventDelivery)
    ok = [r.delivery_id for r in results if r.error is None]
    if not ok:
        return
    for row in session.execute(select(EventDelivery.id, EventDelivery.payload)
                               .where(EventDelivery.id.in_(ok), EventDelivery.status == "delivered")).all():
        kept = [{"id": e.get("id"), "type": e.get("type")} for e in (row.payload or {}).get("events", [])]
        session.execute(update(EventDelivery).where(EventDelivery.id == row.id).values(payload={"events": kept})
                        .execution_options(synchronize_session=False))


def claim_for_dispatch(session: Session, now: datetime, limit: int, lease: timedelta) -> list[int]:
    """Batches due for a retry, or whose task was lost, or whose worker died."""
    return _REDISPATCH.claim(session, now, limit, lease)
