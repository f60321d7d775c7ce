"""provider send-rate limits; reconciling messages a dead worker left in doubt

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 09:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("providers") as batch:
        batch.add_column(sa.Column("max_per_second", sa.Float(), nullable=True))
        batch.add_column(sa.Column("rate_tat", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("in_doubt_since", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("inbound_events") as batch:
        batch.add_column(sa.Column("message_key", sa.String(length=200), nullable=True))
        batch.create_index("ix_inbound_events_message_key", ["message_key"])


def downgrade() -> None:
    with op.batch_alter_table("inbound_events") as batch:
        batch.drop_index("ix_inbound_events_message_key")
        batch.drop_column("message_key")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("in_doubt_since")
    with op.batch_alter_table("providers") as batch:
        batch.drop_column("rate_tat")
        batch.drop_column("max_per_second")
