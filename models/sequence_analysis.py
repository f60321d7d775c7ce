"""Cached sequence analyses: per sequence and kind (``holdout``, ``experiment_arms``)
the counts the analytics pool last read for the sequence's holdout lift and its
experiments' "no email" arms, and when.

Small sequences are counted live on every request; a large one (a million
enrollments take seconds to join with the goal events) is served from here, with
``computed_at`` as the answer's ``as_of`` (analytics.sequence_cache). ``status``
and the lease work as on account_analyses (analytics.leases); ``result`` keeps the last counts while
the next are computed, with the settings they were counted under, so a changed
goal is never answered with counts of the old one. UNIQUE(sequence_id, kind).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow

SEQUENCE_ANALYSIS_KINDS = ("holdout", "experiment_arms")


class SequenceAnalysis(Base):
    __tablename__ = "sequence_analyses"
    __table_args__ = (UniqueConstraint("sequence_id", "kind"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    # When the counts' snapshot was taken: the answer's ``as_of``.
    computed_at: Mapped[datetime | None]
    seconds: Mapped[float | None] = mapped_column(Float)
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
