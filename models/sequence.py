"""Sequences (drip campaigns) and their ordered steps."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import IDS_NEVER_REUSED, Base, utcnow

SEQUENCE_STATUSES = ("draft", "active", "paused", "archived")
STEP_TYPES = ("email", "delay", "condition", "action", "webhook", "wait_until", "goto")


class Sequence(Base):
    __tablename__ = "sequences"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    steps: Mapped[list[Step]] = relationship(
        back_populates="sequence", order_by="Step.position", cascade="all, delete-orphan"
    )


class Step(Base):
    """One step; ``config`` holds the type-specific fields, validated by sequencing.steps."""

    __tablename__ = "steps"
    __table_args__ = (UniqueConstraint("sequence_id", "position"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(20))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)

    sequence: Mapped[Sequence] = relationship(back_populates="steps")
