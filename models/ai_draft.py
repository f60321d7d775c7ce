"""AI drafts: one row per request for a draft (a whole sequence, subject lines for a
step, a rewrite or a fix of a step), written before any model is asked.

``queued`` -> ``running`` (claimed with a conditional UPDATE, under a lease) ->
``ready`` (``result`` and the pre-flight's ``report`` written together) or
``failed`` (``error`` says why). A draft waiting out a model server's Retry-After
is ``queued`` again with ``due_at`` in the future. ``cache_key`` (a hash of the
kind, the request, the model and the content it works on) lets a second identical
request reuse a ready draft's answer; ``applied_at`` is set once, by the one apply
that may happen. Usage (tokens, cost) is per draft, and today's sum per account is
the daily budget's measure.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow

DRAFT_KINDS = ("sequence", "subject_lines", "rewrite", "fix")
DRAFT_STATUSES = ("queued", "running", "ready", "failed")


class AiDraft(Base):
    __tablename__ = "ai_drafts"
    __table_args__ = (Index("ix_ai_drafts_account_id_created_at", "account_id", "created_at"),
                      Index("ix_ai_drafts_account_id_cache_key", "account_id", "cache_key"),
                      Index("ix_ai_drafts_status_due_at", "status", "due_at"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    # What was asked: {"brief"?, "count"?}; the sequence and step it works on are columns.
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # No foreign key: a draft outlives the sequence it was made for, and says so at apply.
    sequence_id: Mapped[int | None] = mapped_column(Integer)
    step: Mapped[int | None] = mapped_column(Integer)
    # The sequence's version when the draft was asked for: apply refuses a draft of
    # content that has changed since.
    sequence_version: Mapped[int | None] = mapped_column(Integer)
    cache_key: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(200))
    result: Mapped[dict[str, Any] | None]
    preflight: Mapped[dict[str, Any] | None]
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float | None] = mapped_column(Float)
    # Seconds spent waiting on the model server, out of the time between started_at and finished_at.
    model_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When a queued draft may run (later than created_at after a model server's Retry-After).
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    applied_at: Mapped[datetime | None]
    # What apply made or changed: {"sequence_id", "step"?}.
    applied: Mapped[dict[str, Any] | None]
