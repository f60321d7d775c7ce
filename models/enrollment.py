"""Enrollments: one subscriber walking one sequence on its own clock.

The row is the timer: ``next_run_at`` says when it is due, ``claimed_until`` is the
lease a tick takes so that two ticks never advance the same row, and an expired
lease (a dead worker) makes the row due again.

No index names ``claimed_until`` or ``claimed_by``, and new pages keep room
(fillfactor 70, migration 0039): the tick's claim and the advance's owner stamp
are then heap-only updates, written on the row's page without a new entry in
each index.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow

ENROLLMENT_STATUSES = ("active", "paused", "completed", "exited", "failed")
ENDED = "completed_at IS NOT NULL"


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (
        # (key, run) lets keyed flows run one instance per cart/order and re-entry
        # rules start a new run after completion, while a retried enroll request
        # hits the constraint instead of enrolling twice.
        UniqueConstraint("sequence_id", "subscriber_id", "instance_key", "run"),
        Index("ix_enrollments_due", "status", "next_run_at"),
        # Event subscriptions find the enrollments a "completed" transition counted (webhooks.event_feed).
        Index("ix_enrollments_sequence_completed", "sequence_id", "completed_at",
              postgresql_where=text(ENDED), sqlite_where=text(ENDED)),
        IDS_NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id", ondelete="CASCADE"), index=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    instance_key: Mapped[str] = mapped_column(String(200), default="")
    run: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(20), default="active")
    current_step: Mapped[int] = mapped_column(Integer, default=0)
    next_run_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    # The worker process advancing it under that lease (core.liveness), stamped when
    # its advance starts and cleared when it ends: a dead worker's enrollments are
    # released by the tick instead of waiting out the lease.
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    exit_reason: Mapped[str | None] = mapped_column(String(200))
    # Advances of this enrollment in a row that raised or whose worker died holding
    # it (an expired lease); reset by one that succeeds. At MAX_CRASHES
    # (sequencing.engine) it is failed, so one poison row cannot hold up the rest.
    crashes: Mapped[int] = mapped_column(Integer, server_default="0")
    # The last crash's reason while it is retried.
    error: Mapped[str | None] = mapped_column(String(200))
    # In the sequence's holdout group (``settings.holdout_percent``), drawn once at
    # enrollment: it walks every step, but its email steps send nothing, so the
    # sequence's lift is measured against it (analytics.holdout).
    held_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
