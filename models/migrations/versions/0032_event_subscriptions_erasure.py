"""event subscriptions and erasure (issue: audiences and broadcasts, items 5 and 6)

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06 10:20:00

``event_subscriptions`` and ``event_deliveries`` (models.event_subscription): an
account's outgoing webhooks for what happens, each with its own cursors over the
events and the step transitions, and the signed batches sent to them.
``ix_enrollments_sequence_completed`` (partial: ended enrollments only, so the
engine's updates of running ones never touch it) finds the enrollments a
``completed`` transition counted. ``suppressions`` gains
``email_hash`` (an erased address's keyed hash) and its ``email`` becomes
nullable (an erased address is not kept), with a unique index on (account_id,
email_hash). SQLite rebuilds the table for the nullable column (batch mode,
AUTOINCREMENT kept, as migration 0013 made it). Downgrade drops erased entries
(they have no address to put back) and the new tables.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ENDED = "completed_at IS NOT NULL"  # models.enrollment's


def _account(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=f"fk_{table}_account_id_accounts",
                                   ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "event_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("events", JSON, nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("cursor_xact", sa.BigInteger(), nullable=False),
        sa.Column("cursor_id", sa.BigInteger(), nullable=False),
        sa.Column("flow_xact", sa.BigInteger(), nullable=False),
        sa.Column("flow_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _account("event_subscriptions"),
        sa.PrimaryKeyConstraint("id", name="pk_event_subscriptions"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_event_subscriptions_account_id", "event_subscriptions", ["account_id"])
    op.create_table(
        "event_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        _account("event_deliveries"),
        sa.ForeignKeyConstraint(["subscription_id"], ["event_subscriptions.id"],
                                name="fk_event_deliveries_subscription_id_event_subscriptions", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_event_deliveries"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_event_deliveries_account_id", "event_deliveries", ["account_id"])
    op.create_index("ix_event_deliveries_status_retry", "event_deliveries", ["status", "retry_at"])
    op.create_index("ix_event_deliveries_subscription_id", "event_deliveries", ["subscription_id", "id"])
    op.create_index("ix_enrollments_sequence_completed", "enrollments", ["sequence_id", "completed_at"],
                    postgresql_where=sa.text(ENDED), sqlite_where=sa.text(ENDED))
    with op.batch_alter_table("suppressions", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("email_hash", sa.String(length=64), nullable=True))
        batch.alter_column("email", existing_type=sa.String(length=320), nullable=True)
    op.create_index("uq_suppressions_account_id_email_hash", "suppressions", ["account_id", "email_hash"],
                    unique=True)


def downgrade() -> None:
    op.drop_index("uq_suppressions_account_id_email_hash", table_name="suppressions")
    op.execute("DELETE FROM suppressions WHERE email IS NULL")
    with op.batch_alter_table("suppressions", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("email", existing_type=sa.String(length=320), nullable=False)
        batch.drop_column("email_hash")
    op.drop_index("ix_enrollments_sequence_completed", table_name="enrollments")
    op.drop_index("ix_event_deliveries_subscription_id", table_name="event_deliveries")
    op.drop_index("ix_event_deliveries_status_retry", table_name="event_deliveries")
    op.drop_index("ix_event_deliveries_account_id", table_name="event_deliveries")
    op.drop_table("event_deliveries")
    op.drop_index("ix_event_subscriptions_account_id", table_name="event_subscriptions")
    op.drop_table("event_subscriptions")
