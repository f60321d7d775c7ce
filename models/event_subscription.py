"""Event subscriptions: an account's outgoing webhooks for what happens (sent,
opened, bounced, ...), and the signed batches delivered to them.

A subscription tails the account's events with its own cursor, the (``xact``,
``id``) of the last event it looked at, as the rollups do (analytics.rollups):
only events under the horizon of running transactions are read, so one that
commits late with a lower id is never skipped. Each batch read becomes one
delivery row (the outbox of these calls), claimed, called and recorded as
webhook steps' calls are (webhooks.outbound).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow
from models.sealed import SealedText


class EventSubscription(Base):
    __tablename__ = "event_subscriptions"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(default=list)
    # Shown once, at creation; sealed at rest (models.sealed) like providers' credentials.
    secret: Mapped[str] = mapped_column(SealedText())
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The last event looked at: (xact, id), as the rollups' watermark (see the module docstring).
    cursor_xact: Mapped[int] = mapped_column(BigInteger, default=0)
    cursor_id: Mapped[int] = mapped_column(BigInteger, default=0)
    # The same over step_transitions, where the engine records completions (enrollment.completed).
    flow_xact: Mapped[int] = mapped_column(BigInteger, default=0)
    flow_id: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EventDelivery(Base):
    """One signed POST of up to a batch of events to one subscription."""

    __tablename__ = "event_deliveries"
    __table_args__ = (Index("ix_event_deliveries_status_retry", "status", "retry_at"),
                      Index("ix_event_deliveries_subscription_id", "subscription_id", "id"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("event_subscriptions.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    retry_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
