"""Sending a double opt-in confirmation: an outbox message with no step, whose
content audience.opt_in wrote into its ``meta``.

It is sent as transactional mail: no unsubscribe footer (the reader is not on any
list yet), no click or open tracking (the link must be the one the reader sees,
and nothing is recorded about someone who has not agreed to anything), but still
a ``List-Unsubscribe`` header, so "I never asked for this" can stop it for good.
Who may get one differs from marketing mail: a ``pending`` or ``unsubscribed``
subscriber (the one click that can bring them back) and an address suppressed
because it unsubscribed; never a bounced, complained or otherwise suppressed one.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from audience.fields import address_key
from audience.opt_in import CONFIRMATION_KIND, reachable_despite
from delivery.mime import Envelope
from models import Message, Suppression

# Statuses a confirmation may still reach: everyone else is either done (bounced,
# complained) or gone.
CONFIRMABLE = ("pending", "unsubscribed", "active")


def confirmation_contents(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    """message id -> meta, for the confirmations among the step-less ``ids``."""
    if not ids:
        return {}
    rows = session.execute(select(Message.id, Message.meta).where(Message.id.in_(ids)))
    return {message_id: meta for message_id, meta in rows if (meta or {}).get("kind") == CONFIRMATION_KIND}


def refusal(session: Session, account_id: int, to_email: str, subscriber: Row[Any] | None) -> str | None:
    """Why this confirmation must not go out, or None."""
    if subscriber is None or subscriber.status not in CONFIRMABLE:
        return f"subscriber {subscriber.status if subscriber else 'deleted'}"
    reason = session.scalar(select(Suppression.reason).where(Suppression.account_id == account_id,
                                                             Suppression.email == address_key(to_email)))
    if not reachable_despite(reason):
        return "address on the suppression list"
    return None


def envelope(meta: dict[str, Any], message: Row[Any], from_email: str, from_name: str | None,
             unsubscribe_url: str, unsubscribe_mailto: str | None) -> Envelope:
    return Envelope(from_email=from_email, from_name=from_name, to_email=message.to_email,
                    subject=str(meta.get("subject") or ""), html=meta.get("html"), text=str(meta.get("text") or ""),
                    unsubscribe_url=unsubscribe_url, unsubscribe_mailto=unsubscribe_mailto,
                    message_key=message.idempotency_key, transactional=True)
