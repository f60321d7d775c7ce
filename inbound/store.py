"""Storing verified provider events, then turning them into ours.

``store_events`` runs in the webhook request: one INSERT ... ON CONFLICT DO
NOTHING, so the provider gets its 200 after one short transaction and a replay
inserts nothing. Everything is keyed per account (models.inbound_event). It
returns the account's ids still ``pending`` for those events (new or left over
from a request whose enqueue failed), so a provider's retry also re-dispatches
work that never reached the queue.

``process_events`` runs on the analytics queue: it matches each event to our
message by provider message id (or, failing that, by our outbox key echoed
back), records it in the one vocabulary (de-duplicated by provider event id), and
for hard bounces, complaints and unsubscribes suppresses the address and ends the
subscriber's enrollments. Any event that proves the provider took a message we
never recorded as sent (its worker died, or the answer was lost) reconciles the
row to ``sent`` instead of letting it be sent again (delivery.outbox.reconcile_sent).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from analytics.events import record_event
from audience.fields import address_key
from core.isolation import run_isolated
from core.reasons import printable
from delivery.outbox import reconcile_sent
from delivery.unsubscribe import stop_sending
from inbound.events import NormalizedEvent, storable, storable_text
from models import InboundEvent, Message, Provider
from models.bulk import insert_ignoring_conflicts
from models.inbound_event import NO_ACCOUNT, InboundNonce, account_key
from sequencing.wakeups import wake_recorded


# kind -> (subscriber status, suppression reason) for events that stop all sending.
_STOPS = {"complained": ("complained", "complained"), "unsubscribed": ("unsubscribed", "unsubscribed")}


def _optional(value: str | None) -> str | None:
    return storable_text(value) if value is not None else None


def _row(provider: str, account_id: int | None, event: NormalizedEvent, now: datetime) -> dict[str, Any]:
    """The row for one event, its text made storable (inbound.events.storable): a NUL
    or a lone surrogate in one field must not refuse the whole request's INSERT,
    which the provider would retry, and be refused, until it gives up."""
    return {"account_id": account_id, "provider": provider,
            "provider_event_id": storable_text(event.provider_event_id), "kind": event.kind,
            "bounce_type": event.bounce_type, "message_ref": _optional(event.message_ref),
            "message_key": _optional(event.message_key), "occurred_at": event.occurred_at,
            "payload": storable({"event": event.raw, "recipient": event.recipient, "reason": event.reason}),
            "status": "pending", "received_at": now}


def store_events(session: Session, provider: str, account_id: int | None, events: Sequence[NormalizedEvent],
                 nonce: str | None, now: datetime) -> list[int]:
    rows = [_row(provider, account_id, e, now) for e in events]
    # A one-time token seen before is a replay: nothing new is stored, whatever the
    # body says, though events of its first delivery still pending are re-dispatched.
    if nonce is None or _first_use(session, provider, account_id, nonce, now):
        insert_ignoring_conflicts(session, InboundEvent, rows, InboundEvent.id)
    ids = [row["provider_event_id"] for row in rows]
    if not ids:
        return []
    return list(session.scalars(select(InboundEvent.id).where(
        account_key(InboundEvent.account_id) == (NO_ACCOUNT if account_id is None else account_id),
        InboundEvent.provider == provider, InboundEvent.provider_event_id.in_(ids), InboundEvent.status == "pending")))


def _first_use(session: Session, provider: str, account_id: int | None, nonce: str, now: datetime) -> bool:
    """Record ``nonce``; False when it was recorded before. Recorded on its own row,
    in the same transaction as the events, so it holds even when every event of the
    request was already stored; a concurrent request with the same token waits on
    the unique index and then finds it taken."""
    row = {"account_id": account_id, "provider": provider, "nonce": storable_text(nonce), "received_at": now}
    return bool(insert_ignoring_conflicts(session, InboundNonce, [row], InboundNonce.id))


def _candidates(ref: str) -> list[str]:
    return [ref, f"<{ref}>"]


def find_message(session: Session, row: InboundEvent) -> Message | None:
    """By the provider's message id; else by our key, which matches a message whose
    provider id we never got to record."""
    matches = []
    if row.message_ref:
        matches.append(Message.provider_message_id.in_(_candidates(row.message_ref)))
    if row.message_key:
        matches.append(Message.idempotency_key == row.message_key)
    for match in matches:
        query = select(Message).where(match)
        if row.account_id is not None:
            query = query.where(Message.account_id == row.account_id)
        found = session.scalars(query.order_by(Message.id).limit(1)).first()
        if found is not None:
            return found
    return None


def _dedup_key(kind: str, message_id: int, provider: str, event_id: str) -> str:
    suffix = f"{provider}:{event_id}"
    if len(suffix) > 120:
        suffix = f"{provider}:" + hashlib.sha256(event_id.encode()).hexdigest()
    return f"{kind}:{message_id}:{suffix}"


def _reconcile(session: Session, message: Message, row: InboundEvent, now: datetime) -> bool:
    if row.kind == "rejected" or message.sent_at is not None or message.attempts == 0:
        return False  # refused by the provider (our retry decides), already recorded, or never tried
    name = session.scalar(select(Provider.name).where(Provider.account_id == message.account_id,
                                                      Provider.kind == row.provider).order_by(Provider.priority))
    return reconcile_sent(session, message.id, name or row.provider, row.message_ref, row.occurred_at or now, now)


def apply_event(session: Session, row: InboundEvent, now: datetime) -> str:
    """Record one stored event; returns its new status."""
    if row.kind is None and not row.message_key:
        return "ignored"
    message = find_message(session, row)
    if message is None:
        return "unmatched"
    reconciled = _reconcile(session, message, row, now)
    if row.kind is None:  # SendGrid processed, Mailgun accepted, SES Send: news only to a row in doubt
        return "processed" if reconciled else "ignored"
    properties: dict[str, Any] = {"provider": row.provider, "provider_event_id": row.provider_event_id}
    if row.bounce_type:
        properties["bounce_type"] = row.bounce_type
    for key in ("recipient", "reason"):
        if (row.payload or {}).get(key):
            properties[key] = row.payload[key]
    if isinstance(properties.get("recipient"), str):
        # Each provider's own spelling (SES may report the punycode domain) as ours.
        properties["recipient"] = address_key(properties["recipient"])
    recorded = record_event(session, account_id=message.account_id, subscriber_id=message.subscriber_id,
                            name=row.kind, now=now, message_id=message.id, source=row.provider, properties=properties,
                            dedup_key=_dedup_key(row.kind, message.id, row.provider, row.provider_event_id),
                            occurred_at=row.occurred_at or now)
    wake_recorded(session, recorded, now)  # an open or a click a condition may wait on
    if row.kind == "bounced" and row.bounce_type == "hard":
        stop_sending(session, message, "bounced", "bounced", now)
    elif row.kind in _STOPS:
        stop_sending(session, message, *_STOPS[row.kind], now)
    return "processed"


def process_events(session: Session, ids: Sequence[int], now: datetime) -> dict[str, int]:
    """Process the pending rows among ``ids``; rows another worker holds are skipped.

    The batch runs in a savepoint; if one event raises, it is rolled back and the
    events are applied one at a time, each in a savepoint of its own, and the one
    that raises again is ``failed`` with its reason. Without this one bad row
    failed the batch, which stayed ``pending``, and the sweep handed the same 500
    events (other accounts' among them) to a worker again, forever. Database
    failures (``OperationalError``) propagate: the task retries the batch."""
    rows = session.scalars(
        select(InboundEvent).where(InboundEvent.id.in_(list(ids)), InboundEvent.status == "pending")
        .order_by(InboundEvent.id).with_for_update(skip_locked=True)).all()
    counts: dict[str, int] = {}

    def failed(row: InboundEvent, exc: Exception) -> None:
        row.status, row.error, row.processed_at = "failed", printable(f"{exc!r}", 500), now
        counts["failed"] = counts.get("failed", 0) + 1

    for done in run_isolated(session, rows, lambda chunk: _apply_all(session, chunk, now), failed,
                             (OperationalError,), "inbound"):
        for status, count in done.items():
            counts[status] = counts.get(status, 0) + count
    return counts


def _apply_all(session: Session, rows: Sequence[InboundEvent], now: datetime) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        row.status = apply_event(session, row, now)
        row.processed_at = now
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


def stale_pending(session: Session, now: datetime, older_than: timedelta, limit: int) -> list[int]:
    """Events still ``pending`` well after they arrived: their enqueue was lost (the
    broker was down after the 200 went out), so the sweep hands them on."""
    return list(session.scalars(select(InboundEvent.id).where(
        InboundEvent.status == "pending", InboundEvent.received_at < now - older_than)
        .order_by(InboundEvent.id).limit(limit)))


# Kept longer than any signature is accepted (Mailgun's 9 hours plus clock skew):
# an older token would be refused by the age check before it was looked up.
NONCE_KEEP = timedelta(hours=24)


def forget_spent_nonces(session: Session, now: datetime, limit: int = 10_000) -> int:
    """Delete up to ``limit`` signature tokens too old to verify again; returns how
    many. One row is kept per Mailgun request, so without this the table only grows."""
    old = select(InboundNonce.id).where(InboundNonce.received_at < now - NONCE_KEEP).limit(limit)
    return session.execute(delete(InboundNonce).where(InboundNonce.id.in_(old.scalar_subquery()))).rowcount  # type: ignore[attr-defined]
