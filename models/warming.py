"""IP warming: a plan per provider, a row per plan, day and mailbox-provider group
holding that day's cap and what was reserved and seen against it, and the history
of every departure from the plain climb.

The cap is counted in ``warming_days.reserved`` with conditional UPDATEs, so many
send workers racing, or a Redis restart, can never let a plan exceed it.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow


class WarmingPlan(Base):
    __tablename__ = "warming_plans"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    # One plan per provider: the provider's IP (or pool) is what is being warmed.
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"), unique=True)
    start_date: Mapped[date]
    # warming.plan.PlanSettings.as_dict(): days, volumes, curve, thresholds, shares, hours, timezone.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {group: {"level": n, "status": s}}: each mailbox-provider group climbs on its own.
    states: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="warming")
    # Messages over the cap may go to the account's other providers only when set.
    allow_overflow: Mapped[bool] = mapped_column(default=False)
    # The last plan day whose results moved the ramp (0: none yet).
    closed_day: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WarmingDay(Base):
    __tablename__ = "warming_days"
    __table_args__ = (UniqueConstraint("plan_id", "day", "grp"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("warming_plans.id", ondelete="CASCADE"), index=True)
    day: Mapped[int] = mapped_column(Integer)  # the plan's calendar day, 1 = start_date
    grp: Mapped[str] = mapped_column(String(20))  # gmail, yahoo, microsoft, other
    cap: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    bounced: Mapped[int] = mapped_column(Integer, default=0)
    complained: Mapped[int] = mapped_column(Integer, default=0)
    deferred: Mapped[int] = mapped_column(Integer, default=0)


class WarmingAdjustment(Base):
    __tablename__ = "warming_adjustments"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("warming_plans.id", ondelete="CASCADE"), index=True)
    day: Mapped[int] = mapped_column(Integer)
    grp: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))
    from_level: Mapped[int] = mapped_column(Integer)
    to_level: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
