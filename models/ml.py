"""Trained models (the registry) and each subscriber's latest scores.

An ``ml_models`` row is one training run of one kind for one account: queued, then
training under a lease, then ready (with its artifact, hash and metrics, all written
in the one transaction that says ready) or failed. ``promoted`` says the run earned
the right to be used (a churn model that did not beat the best simple rule has not);
``live`` marks the one model per account and kind that scoring uses.

``subscriber_scores`` holds one row per subscriber, replaced by each scoring run.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow

ML_STATUSES = ("queued", "training", "ready", "failed")


class MlModel(Base):
    __tablename__ = "ml_models"
    __table_args__ = (Index("ix_ml_models_account_id_kind_status", "account_id", "kind", "status"),
                      Index("ix_ml_models_status_claimed_until", "status", "claimed_until"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    # Features as of this moment, from history up to it; scores written after training are as of it too.
    as_of: Mapped[datetime]
    # The history the model learned from (its earliest event and as_of), once known.
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The trained estimator (ml.api.dump); deferred so listing models never loads it.
    artifact: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    artifact_sha256: Mapped[str | None] = mapped_column(String(64))
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    live: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # While training: the worker's lease; once it lapses the run is failed by the sweep.
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class SubscriberScore(Base):
    __tablename__ = "subscriber_scores"
    # (account, subscriber) serves an account's scores in subscriber order, pages and
    # the CSV's keyset alike; on account alone every batch sorted the whole account.
    __table_args__ = (Index("ix_subscriber_scores_account_id_subscriber_id", "account_id", "subscriber_id"),
                      IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), unique=True)
    churn_risk: Mapped[float | None] = mapped_column(Float)
    engagement: Mapped[float | None] = mapped_column(Float)
    # 0-23 in the subscriber's time zone.
    best_send_hour: Mapped[int | None] = mapped_column(SmallInteger)
    scored_at: Mapped[datetime]
    # The models each score came from; no foreign keys: a deleted model leaves its scores readable.
    churn_model_id: Mapped[int | None] = mapped_column(Integer)
    engagement_model_id: Mapped[int | None] = mapped_column(Integer)
    send_time_model_id: Mapped[int | None] = mapped_column(Integer)
