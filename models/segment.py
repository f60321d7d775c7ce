"""Segments: an account's saved audience filters (audience.segment_filter compiles
``filter`` to one SQL query over subscribers). Who is in one is asked of the
database when needed; ``segment_members`` only keeps, for segments that trigger a
sequence ("entered segment"), who was in at the last check, so the next check can
tell who entered since (sequencing.segment_entries)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow


class Segment(Base):
    __tablename__ = "segments"
    __table_args__ = (IDS_NEVER_REUSED,)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    filter: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # When segment_members was last brought up to date; null: never (the first check
    # only records who is in, enrolling no one).
    members_at: Mapped[datetime | None]


class SegmentMember(Base):
    """One subscriber in one segment at its last check, and since when."""

    __tablename__ = "segment_members"
    __table_args__ = (UniqueConstraint("segment_id", "subscriber_id"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    # Serves the cascade when a subscriber is deleted.
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    entered_at: Mapped[datetime]
