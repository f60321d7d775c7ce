"""Cached attribution answers: per account and query (model, window, touch, event,
period) the answer the analytics pool last computed, when, and in how long.

Attribution joins every conversion to its touches: seconds at ten million events,
so a large account's answer is served from here with ``computed_at`` as its
``as_of`` (analytics.attribution_cache). ``key`` is a hash of ``params``;
``status`` and the lease work as on sequence_analyses. UNIQUE(account_id, key).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow


class AttributionAnswer(Base):
    __tablename__ = "attribution_answers"
    __table_args__ = (UniqueConstraint("account_id", "key"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20), default="ready")
    # Last asked for again by a request: an answer nobody asks for is forgotten.
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    computed_at: Mapped[datetime]
    seconds: Mapped[float | None] = mapped_column(Float)
    result: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(Text)
