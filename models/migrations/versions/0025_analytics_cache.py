"""cached sequence-level analyses: holdout lift and experiment arms (issue: analytics pool, items 4-5)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 07:10:00

``sequence_analyses``: per sequence and kind (``holdout``, ``experiment_arms``) the
counts the analytics pool last read and when
(models.sequence_analysis), so that the holdout and experiments endpoints of a
sequence with a million enrollments answer from a cache. Nothing existing
changes; downgrade drops the table (the endpoints then count live again).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sequence_analyses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("sequence_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("result", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_sequence_analyses_account_id_accounts",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sequence_id"], ["sequences.id"], name="fk_sequence_analyses_sequence_id_sequences",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_sequence_analyses"),
        sa.UniqueConstraint("sequence_id", "kind", name="uq_sequence_analyses_sequence_id_kind"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_sequence_analyses_account_id", "sequence_analyses", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_sequence_analyses_account_id", table_name="sequence_analyses")
    op.drop_table("sequence_analyses")
