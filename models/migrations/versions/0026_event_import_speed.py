"""events: two indexes an imported event no longer pays for (issue: ml, item 1)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 07:10:00

Every event row was written into six indexes; a history import writes millions.
``ix_events_account_id`` goes: ``ix_events_account_xact`` (``account_id, xact,
id``, migration 0015) leads with the same column, so every lookup by account (and
the cascade from a deleted account) uses that one. ``ix_events_message_id``
becomes partial, over the rows that have a message: imported events, API events
and most custom events have none, and every reader of the index (the messages'
events in sequencing, attribution and warming, and ``ON DELETE SET NULL`` from
``messages``) asks for one message id, which a NULL never matches. Same on SQLite.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HAS_MESSAGE = sa.text("message_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_events_account_id", table_name="events")
    op.drop_index("ix_events_message_id", table_name="events")
    op.create_index("ix_events_message_id", "events", ["message_id"], unique=False,
                    postgresql_where=HAS_MESSAGE, sqlite_where=HAS_MESSAGE)


def downgrade() -> None:
    op.drop_index("ix_events_message_id", table_name="events")
    op.create_index("ix_events_message_id", "events", ["message_id"], unique=False)
    op.create_index("ix_events_account_id", "events", ["account_id"], unique=False)
