"""The outbox: one row per email the platform has decided to send.

The unique ``idempotency_key`` (enrollment, step, variant) is what makes a retried
advance harmless: the second insert hits the constraint instead of a second email.

No index names ``status``: the claim (queued -> sending) then changes no indexed
value, so PostgreSQL writes it as a heap-only update, with room kept for it on the
row's page (fillfactor 70, migration 0010), instead of a new entry in each of the
table's indexes. The tick's sweep finds unfinished rows through ``settled``, a
column the database derives from ``status`` and which the claim leaves false.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Computed, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow

MESSAGE_STATUSES = ("queued", "sending", "sent", "deferred", "failed", "suppressed")
# A message in one of these is finished: nothing will send it again.
SETTLED = "status IN ('sent', 'failed', 'suppressed')"
UNSETTLED = text("NOT settled")
# Only a broadcast's rows are in its index, so the sequences' sends pay nothing for it.
OF_BROADCAST = text("broadcast_id IS NOT NULL")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_unsettled", "retry_at", postgresql_where=UNSETTLED, sqlite_where=UNSETTLED),
                      Index("ix_messages_broadcast_id", "broadcast_id", "variant", postgresql_where=OF_BROADCAST,
                            sqlite_where=OF_BROADCAST),
                      IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    sequence_id: Mapped[int | None] = mapped_column(ForeignKey("sequences.id", ondelete="SET NULL"), index=True)
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollments.id", ondelete="SET NULL"))
    step_id: Mapped[int | None] = mapped_column(ForeignKey("steps.id", ondelete="SET NULL"))
    variant: Mapped[str | None] = mapped_column(String(100))
    # A broadcast's message (models.broadcast); its key is ``broadcast:{id}:{subscriber_id}``.
    # No FOREIGN KEY: migration 0030 says why (SQLite).
    broadcast_id: Mapped[int | None] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    settled: Mapped[bool] = mapped_column(Computed(SETTLED, persisted=True))
    to_email: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(998))
    provider: Mapped[str | None] = mapped_column(String(100))
    provider_message_id: Mapped[str | None] = mapped_column(String(300), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Tries whose worker died holding the row (counted when it is taken back): a
    # message that kills its worker every time is abandoned after a few.
    crashes: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    retry_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    # The worker process whose claim set ``claimed_until`` (core.liveness), written by
    # the claim itself. Not indexed, so the claim stays a heap-only update: the
    # tick's release of a dead worker's claims finds them through ix_messages_unsettled.
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    # Set when a worker died while this row was ``sending``: the provider may have
    # accepted it, so before a resend we wait for provider events to say so.
    in_doubt_since: Mapped[datetime | None]
    # The first transient failure: from then on the message is retried for
    # ESEQ_RETRY_HOURS, then expires (a limit's hold does not count).
    deferred_since: Mapped[datetime | None]
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
