"""Which worker processes are alive: each one renews its row every
few seconds (core.liveness), and the tick releases the claims of an owner whose row
stopped moving (delivery.outbox.release_dead_claims).

A row, not a Redis key: the claims it judges live in this database, so a flushed or
restarted Redis (the crash tests do both) cannot make a live worker look dead or a
dead one alive, and one clock decides both.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base


class WorkerHeartbeat(Base):
    __tablename__ = "worker_heartbeats"
    __table_args__ = (UniqueConstraint("worker_id"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    # hostname:pid:random, chosen when the worker process starts or first claims (core.liveness.new_worker_id).
    worker_id: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime]
    # Set when the tick found the worker silent and released its claims; a worker
    # that was only paused clears it with its next beat.
    released_at: Mapped[datetime | None]
    # Set by a worker stopping cleanly (core.liveness.mark_stopped): silence without
    # it means the process was killed.
    stopped_at: Mapped[datetime | None]
    # What that release handed back (for operators and the crash tests).
    released_messages: Mapped[int] = mapped_column(Integer, server_default="0")
    released_enrollments: Mapped[int] = mapped_column(Integer, server_default="0")
