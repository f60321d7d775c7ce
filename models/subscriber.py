"""Subscribers: one row per address per account."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow

# "pending": came in through a double opt-in form and has not confirmed yet; never
# enrolled or sent anything but the confirmation email (audience.opt_in).
SUBSCRIBER_STATUSES = ("active", "pending", "unsubscribed", "bounced", "complained")
PENDING = text("status = 'pending'")


class Subscriber(Base):
    __tablename__ = "subscribers"
    # The expiry job's (audience.opt_in.expire_pending): only pending rows are in it,
    # so finding the stale ones never scans the list. The unique (account_id, email)
    # index also serves every lookup by account (migration 0037 dropped the
    # account_id index beside it, which the planner chose, with stale statistics,
    # to find an address among an account's subscribers one by one).
    __table_args__ = (UniqueConstraint("account_id", "email"),
                      Index("ix_subscribers_pending_created_at", "created_at", postgresql_where=PENDING,
                            sqlite_where=PENDING),
                      IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # Stored in audience.fields.normalise_email's form (lower case, the domain's
    # Unicode spelling), which every way in uses: one address, one row.
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="active")
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tags: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
