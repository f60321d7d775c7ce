"""Broadcasts: one-off emails to a segment or a topic, optionally with a subject
test, sent once to each member through the outbox (``messages.broadcast_id``).

The broadcast row is also the bookkeeping of its sending (broadcasts.sending):
``status`` says which step is next, ``next_run_at`` when, ``claimed_until`` who is
on it. Each step's message inserts commit with its status change, so a worker
killed at any point leaves either the step undone (done again, and the outbox's
unique keys insert nothing twice) or done.

    draft -> scheduled -> sending -> sent
                      \\-> testing -> sending -> sent
    draft | scheduled | testing | sending -> cancelled
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base, JSONType, utcnow

BROADCAST_STATUSES = ("draft", "scheduled", "testing", "sending", "sent", "cancelled")
# Statuses the beat's claim looks at (with next_run_at due).
ACTIVE = text("status IN ('scheduled', 'testing', 'sending')")


class Broadcast(Base):
    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_due", "next_run_at", postgresql_where=ACTIVE, sqlite_where=ACTIVE),
                      IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id", ondelete="SET NULL"))
    topic: Mapped[str | None] = mapped_column(String(100))
    subject: Mapped[str | None] = mapped_column(String(998))
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    template_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id", ondelete="SET NULL"))
    # [{"name", "subject"?, "html"?, "text"?}]; each overrides the broadcast's own content.
    variants: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    send_at: Mapped[datetime | None]
    local_time: Mapped[str | None] = mapped_column(String(5))  # "HH:MM" in each member's zone
    best_time: Mapped[bool] = mapped_column(Boolean, default=False)
    test: Mapped[dict[str, Any] | None] = mapped_column()  # {"percent", "metric", "wait_seconds"}
    status: Mapped[str] = mapped_column(String(20), default="draft")
    winner: Mapped[str | None] = mapped_column(String(100))
    # How the winner was chosen: the decision rule's status and the counts it saw.
    decision: Mapped[dict[str, Any] | None] = mapped_column()
    audience_size: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)  # why sending stopped (its segment was deleted, say)
    preflight_overridden: Mapped[bool] = mapped_column(Boolean, default=False)
    next_run_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    scheduled_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
