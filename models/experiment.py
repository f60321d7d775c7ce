"""Stored experiment decisions: the first time the rule (analytics.experiments)
says an email step's variants are decided or no different, that answer is kept.

A decision is final. With ``auto_promote`` the loser stops being sent, so its
counts freeze while the winner's grow; re-deciding on those counts could reverse
it. One row per step (UNIQUE(step_id)): two workers settling at once insert the
same step, and the second insert is ignored rather than overwriting the first.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base


class ExperimentDecision(Base):
    __tablename__ = "experiment_decisions"
    __table_args__ = (IDS_NEVER_REUSED,)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id", ondelete="CASCADE"), index=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("steps.id", ondelete="CASCADE"), unique=True)
    # ``decided`` (with a winner) or ``no_difference`` (winner None).
    status: Mapped[str] = mapped_column(String(20))
    winner: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime]
    # The experiment object the decision was made on, for the record.
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ExperimentHoldout(Base):
    """One visit of an email step's experiment holdout arm
    (``experiment.holdout_percent``): the enrollment reached the step, was drawn
    into the "no email" arm, and passed on unsent. Written by the engine in the
    advance's transaction, one row per visit (a loop back counts again), so the
    arm's visitors and their conversions after the visit are counted exactly."""

    __tablename__ = "experiment_holdouts"
    __table_args__ = (UniqueConstraint("step_id", "enrollment_id", "visit"),
                      Index("ix_experiment_holdouts_step_subscriber", "step_id", "subscriber_id", "held_at"),
                      IDS_NEVER_REUSED)
    __mapper_args__ = {"eager_defaults": False}

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id", ondelete="CASCADE"))
    step_id: Mapped[int] = mapped_column(ForeignKey("steps.id", ondelete="CASCADE"))
    # Kept (as NULL) when the enrollment is deleted, as its messages are: the arm's counts stay.
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollments.id", ondelete="SET NULL"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    # The visit's number at the step for this enrollment (0 first, a loop back 1...).
    visit: Mapped[int] = mapped_column(Integer)
    held_at: Mapped[datetime]
