"""Background jobs a client can poll (subscriber and event imports), and the parts of
an upload too large to hold in one row."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, deferred, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow

JOB_STATUSES = ("pending", "running", "completed", "failed")


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_claimed", "status", "claimed_until"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    # The uploaded payload lives in the database, not on a web host's disk, so any
    # worker can pick the job up; deferred so listing jobs never loads it.
    payload: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    payload_format: Mapped[str] = mapped_column(String(10), default="json")
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[str]] = mapped_column(default=list)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # While pending: "dispatched, do not dispatch again before". While running: the
    # worker's lease, extended after every chunk; once it lapses the job is resumed.
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class JobPart(Base):
    """One piece of a job's upload, in order (``part`` from 0). An event import of up
    to a gigabyte is streamed into these as it arrives, so neither the web process
    nor the worker ever holds more than one part, and any worker can read them."""

    __tablename__ = "job_parts"
    __table_args__ = (UniqueConstraint("job_id", "part"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    part: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
