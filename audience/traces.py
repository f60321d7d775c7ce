"""Where a subscriber appears besides their own rows: what export shows and erasure scrubs.

Their events, messages, enrollments, scores and topic choices hang off the
subscriber row (ON DELETE CASCADE). Other rows carry them only as text: a
provider's raw event (``inbound_events``: by our outbox key or the provider's
message id of one of their messages, or the address in the payload), a webhook
step's call (``webhook_deliveries``: by their enrollment, or the address in the
payload), a batch for an event subscription not yet delivered
(``event_deliveries``; a delivered one keeps only event ids), and the
suppression list (by address, or an erased address's hash). Matching by address
is a text search of the JSON, in the spellings a payload may carry (the Unicode
domain, its punycode form, JSON's ``\\u`` escapes), case-blind; it is bounded by
account except for the environment endpoint's events (no account), which are
matched by our keys only, as they may be another account's.
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, func, or_, select
from sqlalchemy.orm import Session

from models import Enrollment, EventDelivery, InboundEvent, Message, Suppression, WebhookDelivery


def spellings(address: str) -> set[str]:
    """The lower-case forms ``address`` (in normal form) may take inside stored JSON."""
    forms = {address.lower()}
    local, _, domain = address.partition("@")
    try:
        forms.add(f"{local}@{domain.encode('idna').decode('ascii')}".lower())
    except UnicodeError:
        pass
    forms |= {json.dumps(form)[1:-1].lower() for form in list(forms)}
    return forms


def mentions(column: Any, address: str) -> ColumnElement[bool]:
    """``column`` (JSON or text) holds ``address`` in one of its spellings."""
    text = func.lower(cast(column, Text))
    return or_(*(text.contains(form, autoescape=True) for form in sorted(spellings(address))))


def inbound_events(account_id: int, subscriber_id: int, address: str) -> ColumnElement[bool]:
    """The provider events about this person: their messages' keys, or their address."""
    theirs = select(Message.idempotency_key).where(Message.subscriber_id == subscriber_id,
                                                   Message.account_id == account_id)
    provider_ids = select(Message.provider_message_id).where(Message.subscriber_id == subscriber_id,
                                                             Message.account_id == account_id,
                                                             Message.provider_message_id.is_not(None))
    ours_or_unowned = or_(InboundEvent.account_id == account_id, InboundEvent.account_id.is_(None))
    return or_(
        ours_or_unowned & InboundEvent.message_key.in_(theirs),
        ours_or_unowned & InboundEvent.message_ref.in_(provider_ids),
        (InboundEvent.account_id == account_id) & or_(mentions(InboundEvent.payload, address),
                                                      mentions(InboundEvent.error, address)),
    )


def webhook_deliveries(account_id: int, subscriber_id: int, address: str) -> ColumnElement[bool]:
    """Webhook step calls made for this person's enrollments or naming their address."""
    enrollments = select(Enrollment.id).where(Enrollment.subscriber_id == subscriber_id,
                                              Enrollment.account_id == account_id)
    return (WebhookDelivery.account_id == account_id) & or_(
        WebhookDelivery.enrollment_id.in_(enrollments), mentions(WebhookDelivery.payload, address),
        mentions(WebhookDelivery.url, address))


def event_deliveries(account_id: int, address: str) -> ColumnElement[bool]:
    """Event subscription batches naming this person (every event carries the
    address); a delivered batch keeps only event ids (webhooks.event_calls.record)."""
    return ((EventDelivery.account_id == account_id) & (EventDelivery.status != "delivered")
            & mentions(EventDelivery.payload, address))


def events_of(payload: dict[str, Any], subscriber_id: int) -> list[dict[str, Any]]:
    """The events of a delivered batch that are about this subscriber (a batch holds many people's)."""
    return [e for e in payload.get("events", []) if (e.get("data") or {}).get("subscriber_id") == subscriber_id]


def suppressions(account_id: int, address: str, hashed: str) -> ColumnElement[bool]:
    return (Suppression.account_id == account_id) & or_(Suppression.email == address, Suppression.email_hash == hashed)


def find(session: Session, model: Any, condition: ColumnElement[bool]) -> list[Any]:
    return list(session.scalars(select(model).where(condition).order_by(model.id)))
