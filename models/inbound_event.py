"""Provider webhook events as received: verified, stored raw, processed later.

One row per provider event. The unique (account, provider, provider_event_id) is
what makes a provider's retry (or a replayed request) a no-op: the insert hits the
index and nothing else happens. It is per account because event ids are only the
provider's, and some are short and sequential (Postmark bounce IDs): keyed without
the account, one tenant could post an id first and have another's real event
dropped as its duplicate. The environment-configured endpoint stores account_id
NULL, and NULLs never conflict in a unique index (SQLite has no NULLS NOT
DISTINCT), so the index is on COALESCE(account_id, 0): no account has id 0.

``InboundNonce`` holds a signature's one-time token (Mailgun's), recorded before
and whatever happens to the events of its request, so a captured request cannot
be played back with other event data, even when its own event was stored before.
The normalized columns are what processing needs; ``payload`` is the provider's
event as it came (less what PostgreSQL cannot store: see inbound.events.storable),
for audits and re-normalisation.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow

INBOUND_STATUSES = ("pending", "processed", "unmatched", "ignored", "failed")
# account_id as the unique indexes see it: the environment endpoint's NULL is 0.
NO_ACCOUNT = 0


class InboundEvent(Base):
    __tablename__ = "inbound_events"
    __table_args__ = (Index("ix_inbound_events_status_received", "status", "received_at"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    # None when the event came through the environment-configured endpoint.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    provider_event_id: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str | None] = mapped_column(String(20))
    bounce_type: Mapped[str | None] = mapped_column(String(10))
    message_ref: Mapped[str | None] = mapped_column(String(300))
    # Our outbox key as the provider echoed it back (custom_args, Metadata, v:
    # variables, the raw header): matches a message whose send we never recorded.
    message_key: Mapped[str | None] = mapped_column(String(200), index=True)
    occurred_at: Mapped[datetime | None]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


class InboundNonce(Base):
    """A one-time signature token already used, per account and provider."""

    __tablename__ = "inbound_nonces"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    nonce: Mapped[str] = mapped_column(String(300))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # pruned by age (inbound.store)


def account_key(column: Any) -> ColumnElement[int]:
    """``column`` as the unique indexes compare it (see NO_ACCOUNT)."""
    return func.coalesce(column, NO_ACCOUNT)


Index("uq_inbound_events_account_provider_event_id", account_key(InboundEvent.account_id), InboundEvent.provider,
      InboundEvent.provider_event_id, unique=True)
Index("uq_inbound_nonces_account_provider_nonce", account_key(InboundNonce.account_id), InboundNonce.provider,
      InboundNonce.nonce, unique=True)
