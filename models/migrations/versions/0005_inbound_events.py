"""inbound provider webhook events

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 10:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("provider_event_id", sa.String(length=300), nullable=False),
        sa.Column("nonce", sa.String(length=300), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=True),
        sa.Column("bounce_type", sa.String(length=10), nullable=True),
        sa.Column("message_ref", sa.String(length=300), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_inbound_events_account_id_accounts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_events")),
        sa.UniqueConstraint("provider", "provider_event_id", name=op.f("uq_inbound_events_provider_provider_event_id")),
        sa.UniqueConstraint("provider", "nonce", name=op.f("uq_inbound_events_provider_nonce")),
    )
    op.create_index(op.f("ix_inbound_events_account_id"), "inbound_events", ["account_id"], unique=False)
    op.create_index("ix_inbound_events_status_received", "inbound_events", ["status", "received_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_inbound_events_status_received", table_name="inbound_events")
    op.drop_index(op.f("ix_inbound_events_account_id"), table_name="inbound_events")
    op.drop_table("inbound_events")
