"""Events: opens, clicks, bounces, custom events; one vocabulary for every source."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import IDS_NEVER_REUSED, Base, utcnow

# ``source`` of events brought in by a history import (audience.event_import):
# they feed analyses and models, but no sequence ever reacts to them.
IMPORTED = "import"
IS_IMPORTED = f"source = '{IMPORTED}'"
# The purchases' partial index condition (migration 0022; analytics.account_data reads by it).
VALUED = "value IS NOT NULL AND subscriber_id IS NOT NULL"
HAS_MESSAGE = text("message_id IS NOT NULL")
# Opens and clicks by time: segments' opened/clicked_within_days leaves read the
# subscribers who engaged in a window from this, instead of probing
# ix_events_subscriber_name once per candidate subscriber (migration 0029).
ENGAGED = "name IN ('opened', 'clicked')"
# PostgreSQL's monthly partitions of events and their DEFAULT one (migration 0034):
# tables of the database the models do not declare, one per month.
PARTITION = re.compile(r"events_(\d{4}_\d{2}|default)")


def is_event_partition(name: str | None) -> bool:
    """Whether ``name`` is a partition of events (Alembic's comparisons skip them)."""
    return bool(name) and PARTITION.fullmatch(str(name)) is not None


class Event(Base):
    """On PostgreSQL the table is partitioned by month of ``occurred_at`` (migration
    0034, analytics.event_partitions), its primary key (id, occurred_at); ids stay
    unique through their sequence, so the ORM keys rows by id alone."""

    __tablename__ = "events"
    # ix_events_account_xact also serves every lookup by account (no index of its
    # own); only rows with a message are in ix_events_message_id (migration 0026).
    __table_args__ = (Index("ix_events_subscriber_name", "subscriber_id", "name", "occurred_at"),
                      Index("ix_events_account_xact", "account_id", "xact", "id"),
                      # RFM's and LTV's purchases per subscriber, by an index-only scan (migration 0022).
                      Index("ix_events_valued", "account_id", "subscriber_id", postgresql_include=["occurred_at", "value"],
                            postgresql_where=text(VALUED), sqlite_where=text(VALUED)),
                      Index("ix_events_message_id", "message_id", postgresql_where=HAS_MESSAGE,
                            sqlite_where=HAS_MESSAGE),
                      Index("ix_events_engaged", "name", "occurred_at", postgresql_include=["subscriber_id"],
                            postgresql_where=text(ENGAGED), sqlite_where=text(ENGAGED)),
                      # A repeat of an imported event is skipped by this (its key names its
                      # instant, so one month holds it), not by event_keys (migration 0037).
                      Index("uq_events_imported_key", "dedup_key", "occurred_at", unique=True,
                            postgresql_where=text(IS_IMPORTED), sqlite_where=text(IS_IMPORTED)), IDS_NEVER_REUSED)
    # Server defaults (xact) are not read back after an insert: nothing needs them then.
    __mapper_args__ = {"eager_defaults": False}

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(100))
    # De-duplication: a provider re-sending the same event, or a second open pixel
    # load, carries the same key and is skipped: the key is claimed in ``event_keys``
    # by a trigger (migration 0034), since a partitioned table cannot keep it unique;
    # an imported event's by uq_events_imported_key instead (migration 0037).
    dedup_key: Mapped[str | None] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(50), default="api")
    # Imported history only: the other platform's id of the message the event was
    # about (ours is message_id), kept so its opens and clicks can be told apart.
    # Like xact, left out of the ORM's inserts (a server default) and loaded only
    # when asked for, so code writing events works on databases before 0020.
    message_ref: Mapped[str | None] = mapped_column(String(300), server_default=text("NULL"), deferred=True)
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    value: Mapped[float | None] = mapped_column(Float)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The inserting transaction's id on PostgreSQL, 0 on SQLite and for older rows:
    # the rollups' watermark (analytics.rollups). Only the database writes it (its
    # server default, migration 0015), so inserts leave it out and fetch nothing
    # back, and it is loaded only when asked for.
    xact: Mapped[int] = mapped_column(BigInteger, server_default="0", deferred=True)


class EventKey(Base):
    """A dedup key taken by an event: one row per key, unique across every month
    of events. Written only by the trigger on ``events``; pruned with the events'
    retention (analytics.retention). On PostgreSQL imported events have no row here
    (migration 0037): their keys are unique on ``events`` itself."""

    __tablename__ = "event_keys"
    __table_args__ = (Index("ix_event_keys_account_occurred", "account_id", "occurred_at"), IDS_NEVER_REUSED)

    dedup_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime]
