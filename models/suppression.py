"""Addresses an account must never send to again, and why.

An erased subscriber's address is not kept: its row holds ``email_hash``, a keyed
hash of the address (core.address_hash, keyed from SECRET_KEY), and no ``email``,
so the address stays suppressed when it comes back without being stored.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow


class Suppression(Base):
    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("account_id", "email"),
                      Index("uq_suppressions_account_id_email_hash", "account_id", "email_hash", unique=True),
                      IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    # The subscribers' form (audience.fields); None for an erased address.
    email: Mapped[str | None] = mapped_column(String(320))
    # Erased addresses only: HMAC-SHA256 hex of the address (core.address_hash).
    email_hash: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
