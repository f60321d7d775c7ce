"""analytics rollups (issue: analytics pool, items 1 and 2)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 01:30:00

``events.xact``: on PostgreSQL the inserting transaction's id, a server default, so
the recording code is unchanged. Event ids are no watermark there: a transaction
holding a lower id can commit after a higher one was read. Every transaction of
the database below the oldest one still running has ended, so the events with a
lower ``xact`` are final and (xact, id) orders them for good. Existing rows get 0 from the column's catalog
default (no table rewrite) and are folded first; the volatile default is set after,
so it applies to new rows only. On SQLite, writers are serialised and ids commit in
order: ``xact`` stays 0 and the id alone is the watermark.

Three tables: per account its watermark, the (message, metric) pairs already
counted once, and the rollups per sequence, step, variant, day and metric.
Downgrade drops them and the column; nothing else reads them.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTOINCREMENT = {"sqlite_autoincrement": True}


def upgrade() -> None:
    op.add_column("events", sa.Column("xact", sa.BigInteger(), server_default="0", nullable=False))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE events ALTER COLUMN xact SET DEFAULT (pg_current_xact_id()::text::bigint)")
    op.create_index("ix_events_account_xact", "events", ["account_id", "xact", "id"])
    op.create_table(
        "rollup_watermarks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("xact", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=True),
        sa.Column("folded", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_rollup_watermarks_account_id_accounts",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_rollup_watermarks"),
        sa.UniqueConstraint("account_id", name="uq_rollup_watermarks_account_id"),
        **AUTOINCREMENT,
    )
    op.create_table(
        "rollup_firsts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("metric", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rollup_firsts"),
        sa.UniqueConstraint("message_id", "metric", name="uq_rollup_firsts_message_id_metric"),
        **AUTOINCREMENT,
    )
    op.create_table(
        "sequence_rollups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("sequence_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.Integer(), nullable=False),
        sa.Column("variant", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("metric", sa.String(length=20), nullable=False),
        sa.Column("uniques", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("revenue", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_sequence_rollups_account_id_accounts",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sequence_id"], ["sequences.id"], name="fk_sequence_rollups_sequence_id_sequences",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_sequence_rollups"),
        sa.UniqueConstraint("sequence_id", "step_id", "variant", "day", "metric",
                            name="uq_sequence_rollups_sequence_id_step_id_variant_day_metric"),
        **AUTOINCREMENT,
    )
    op.create_index("ix_sequence_rollups_account_id", "sequence_rollups", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_sequence_rollups_account_id", table_name="sequence_rollups")
    op.drop_table("sequence_rollups")
    op.drop_table("rollup_firsts")
    op.drop_table("rollup_watermarks")
    op.drop_index("ix_events_account_xact", table_name="events")
    # Batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("events") as batch:
        batch.drop_column("xact")
