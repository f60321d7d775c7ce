"""Step flow: how enrollments move through a sequence's steps, for its funnel.

``step_transitions`` is append-only: the engine adds rows in the transaction that
moves the enrollments, one row per (sequence, position, kind) and batch with the
count ``n`` of enrollments that made that move, so a batch of 200 advances writes a
handful of rows and parallel workers never update a shared counter.
``step_flow_rollups`` holds the same counts folded per sequence, position, day and
kind (analytics.flow), the watermark of the fold kept beside the events' one.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base


class StepTransition(Base):
    __tablename__ = "step_transitions"
    __table_args__ = (Index("ix_step_transitions_account_xact", "account_id", "xact", "id"),
                      Index("ix_step_transitions_sequence_xact", "sequence_id", "xact", "id"), IDS_NEVER_REUSED)
    __mapper_args__ = {"eager_defaults": False}

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id", ondelete="CASCADE"))
    # The step's position when the move happened (len(steps) for "completed").
    position: Mapped[int] = mapped_column(Integer)
    # analytics.flow.KINDS
    kind: Mapped[str] = mapped_column(String(20))
    n: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime]
    # The inserting transaction's id on PostgreSQL (its server default, migration
    # 0018), 0 on SQLite: the fold's watermark, as events.xact is.
    xact: Mapped[int] = mapped_column(BigInteger, server_default="0", deferred=True)


class StepFlowRollup(Base):
    __tablename__ = "step_flow_rollups"
    __table_args__ = (UniqueConstraint("sequence_id", "position", "day", "kind"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(20))
    n: Mapped[int] = mapped_column(BigInteger, default=0)
