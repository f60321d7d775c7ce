"""Provider webhook events as received: verified, stored raw, processed later.

One row per provider event. The unique (provider, provider_event_id) is what makes
a provider's retry (or a replayed request) a no-op: the insert hits the constraint
and nothing else happens. ``nonce`` holds a signature's one-time token (Mailgun's)
under its own unique key, so a captured request cannot be played back with a new
event id either. The normalized columns are what processing needs; ``payload`` is
the provider's event exactly as it came, for audits and re-normalisation.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow

INBOUND_STATUSES = ("pending", "processed", "unmatched", "ignored")


class InboundEvent(Base):
    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("provider", "provider_event_id"),
        UniqueConstraint("provider", "nonce"),
        Index("ix_inbound_events_status_received", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None when the event came through the environment-configured endpoint.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    provider_event_id: Mapped[str] = mapped_column(String(300))
    nonce: Mapped[str | None] = mapped_column(String(300))
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
