"""broadcasts (issue: audiences and broadcasts, item 2)

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 10:20:00

``broadcasts`` (models.broadcast): one-off emails to a segment or topic, with
their sending's bookkeeping. ``messages.broadcast_id`` marks a broadcast's
messages, with a PARTIAL index on (broadcast_id, variant) (only rows WHERE
broadcast_id IS NOT NULL, so the sequences' sends write no entry in it) for the
counts per variant and the test's decision. Whether a broadcast is finished is
asked of it and of the existing index of unsettled messages: one more index of
the unfinished ones cost every row of a million-member start a ninth index entry. The column has no FOREIGN KEY: SQLite
can add one to an existing table only as a column constraint, which it neither
names nor reports back as declared (so models and migrations could not match), and
rebuilding ``messages`` to add it would copy the generated ``settled`` column,
which SQLite refuses. Nothing deletes a broadcast; deleting an account removes
both through their own account_id cascades. Downgrade drops in place on both.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ACTIVE = sa.text("status IN ('scheduled', 'testing', 'sending')")
OF_BROADCAST = sa.text("broadcast_id IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("topic", sa.String(length=100), nullable=True),
        sa.Column("subject", sa.String(length=998), nullable=True),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("variants", JSON, nullable=True),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("local_time", sa.String(length=5), nullable=True),
        sa.Column("best_time", sa.Boolean(), nullable=False),
        sa.Column("test", JSON, nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("winner", sa.String(length=100), nullable=True),
        sa.Column("decision", JSON, nullable=True),
        sa.Column("audience_size", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("preflight_overridden", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_broadcasts_account_id_accounts",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["segment_id"], ["segments.id"], name="fk_broadcasts_segment_id_segments",
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["template_id"], ["templates.id"], name="fk_broadcasts_template_id_templates",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_broadcasts"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_broadcasts_account_id", "broadcasts", ["account_id"])
    op.create_index("ix_broadcasts_due", "broadcasts", ["next_run_at"], postgresql_where=ACTIVE, sqlite_where=ACTIVE)
    op.add_column("messages", sa.Column("broadcast_id", sa.Integer(), nullable=True))
    op.create_index("ix_messages_broadcast_id", "messages", ["broadcast_id", "variant"],
                    postgresql_where=OF_BROADCAST, sqlite_where=OF_BROADCAST)


def downgrade() -> None:
    op.drop_index("ix_messages_broadcast_id", table_name="messages")
    op.execute("ALTER TABLE messages DROP COLUMN broadcast_id")
    op.drop_index("ix_broadcasts_due", table_name="broadcasts")
    op.drop_index("ix_broadcasts_account_id", table_name="broadcasts")
    op.drop_table("broadcasts")
