"""Email providers an account sends through, with their circuit-breaker state.

The circuit lives on the row, not in Redis or worker memory, so every send worker
sees the same state, ``GET /api/v1/providers`` shows it, and a restart forgets
nothing.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow
from models.sealed import SealedJSON

PROVIDER_KINDS = ("smtp", "sendgrid", "ses", "postmark", "mailgun")


class Provider(Base):
    __tablename__ = "providers"
    __table_args__ = (UniqueConstraint("account_id", "name"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    # Lower goes first; equal priorities share traffic by weight.
    priority: Mapped[int] = mapped_column(Integer, default=100)
    weight: Mapped[int] = mapped_column(Integer, default=1)
    # Holds credentials: never serialized back to API clients, sealed at rest (models.sealed).
    config: Mapped[dict[str, Any]] = mapped_column(SealedJSON(), default=dict)
    domains: Mapped[list[str]] = mapped_column(default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    circuit_state: Mapped[str] = mapped_column(String(20), default="closed")
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    circuit_opened_at: Mapped[datetime | None]
    # A 429's Retry-After: not called again before this.
    paused_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_success_at: Mapped[datetime | None]
    # Send-rate limit shared by every worker; None is unlimited. ``rate_tat`` is the
    # limiter's theoretical arrival time (GCRA): the moment the next send may start.
    max_per_second: Mapped[float | None] = mapped_column(Float)
    rate_tat: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
