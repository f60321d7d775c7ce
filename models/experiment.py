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

from sqlalchemy import ForeignKey, String
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
