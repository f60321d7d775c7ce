"""Subscription topics (a newsletter, product updates, ...) and who chose each.

A subscriber is in a topic while their row here says ``subscribed``; leaving one
on the preference page sets ``left`` (kept, so a later import or form cannot put
them back without their saying so again). Unsubscribing from everything is the
subscriber's status and the suppression list, as before topics.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow

TOPIC_SUBSCRIPTION_STATUSES = ("subscribed", "left")


class Topic(Base):
    __tablename__ = "topics"
    __table_args__ = (UniqueConstraint("account_id", "key"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # What the API, broadcasts and sequences call it ("newsletter"); ``name`` is what readers see.
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TopicSubscription(Base):
    __tablename__ = "topic_subscriptions"
    __table_args__ = (UniqueConstraint("topic_id", "subscriber_id"),
                      Index("ix_topic_subscriptions_subscriber_id", "subscriber_id"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default="subscribed")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
