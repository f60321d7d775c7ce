"""How far the pruning of message bodies has gone, per account (analytics.retention)."""
from __future__ import annotations

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base


class RetentionProgress(Base):
    """Messages of the account with an id up to ``messages_through`` have had their
    bodies pruned (or were settled and past retention when passed): each run starts
    after it instead of scanning the pruned rows again."""

    __tablename__ = "retention_progress"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), unique=True)
    messages_through: Mapped[int] = mapped_column(server_default="0", default=0)
