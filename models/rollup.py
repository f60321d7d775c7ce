"""Analytics rollups: per sequence, step, variant, day and metric, the counts the
analytics endpoint answers from, folded from events by ``analytics.rollups``.

``rollup_watermarks`` says, per account, how far its events have been folded: every
event ordered before (``xact``, ``event_id``) is counted, none after. ``rollup_firsts``
holds the (message, metric) pairs already counted once, which is what makes a
second open of the same email a total but not a second opener.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base


class RollupWatermark(Base):
    __tablename__ = "rollup_watermarks"
    __table_args__ = (IDS_NEVER_REUSED,)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), unique=True)
    # The last folded event's (events.xact, events.id): the fold resumes after it.
    xact: Mapped[int] = mapped_column(BigInteger, default=0)
    event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    # Every event committed before this moment is counted (the endpoint's ``as_of``).
    as_of: Mapped[datetime | None]
    folded: Mapped[int] = mapped_column(BigInteger, default=0)
    # The last folded step transition's (step_transitions.xact, id) (analytics.flow).
    flow_xact: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    flow_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class RollupFirst(Base):
    __tablename__ = "rollup_firsts"
    __table_args__ = (UniqueConstraint("message_id", "metric"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    # No foreign key: a deleted message's counts stay in the rollups, and its pairs with them.
    message_id: Mapped[int] = mapped_column(BigInteger)
    metric: Mapped[str] = mapped_column(String(20))


class SequenceRollup(Base):
    __tablename__ = "sequence_rollups"
    # ix_sequence_rollups_day: today's outcomes of every account at each /metrics scrape (migration 0035).
    __table_args__ = (UniqueConstraint("sequence_id", "step_id", "variant", "day", "metric"),
                      Index("ix_sequence_rollups_day", "day", "metric"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id", ondelete="CASCADE"))
    # 0 when the message's step was deleted, "" when it had no variant: part of the
    # unique key, where NULLs would never conflict.
    step_id: Mapped[int] = mapped_column(Integer)
    variant: Mapped[str] = mapped_column(String(100))
    day: Mapped[date] = mapped_column(Date)
    metric: Mapped[str] = mapped_column(String(20))
    # Messages with at least one such event first seen that day; all such events; their values.
    uniques: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue: Mapped[float] = mapped_column(Float, default=0.0)
