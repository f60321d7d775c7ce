"""Cached account analyses: per account and kind (``cohorts``, ``rfm``, ``ltv``) the
last answer the analytics pool computed, when, and from which data.

The web never computes these (a million subscribers take seconds): it serves
``result`` and asks the pool for a new one. ``status`` is where the next answer
stands: ``queued`` (asked for), ``computing`` (a worker holds it until
``claimed_until``), ``ready`` or ``failed`` (``error`` says why). A row keeps its
last ``result`` while the next one is computed. UNIQUE(account_id, kind): two
requests at once make one row.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow

ANALYSIS_KINDS = ("cohorts", "rfm", "ltv")


class AccountAnalysis(Base):
    __tablename__ = "account_analyses"
    __table_args__ = (UniqueConstraint("account_id", "kind"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    computed_at: Mapped[datetime | None]
    # The data the result was computed from: the account's highest event and
    # subscriber ids then. Newer ones mean the result is stale (beat recomputes it).
    source_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    source_subscriber_id: Mapped[int] = mapped_column(BigInteger, default=0)
    seconds: Mapped[float | None] = mapped_column(Float)
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
