"""experiment decisions (issue: analytics pool, item 4)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 02:25:00

``experiment_decisions``: per email step with an experiment, the first decision
the rule reached (decided with a winner, or no difference) and the report it was
made on. UNIQUE(step_id) makes the first one final. Downgrade drops the table;
the experiments endpoint then decides from the counts alone again, and nothing
is promoted.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experiment_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("sequence_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("winner", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_experiment_decisions_account_id_accounts",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sequence_id"], ["sequences.id"],
                                name="fk_experiment_decisions_sequence_id_sequences", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["step_id"], ["steps.id"], name="fk_experiment_decisions_step_id_steps",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_experiment_decisions"),
        sa.UniqueConstraint("step_id", name="uq_experiment_decisions_step_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_experiment_decisions_account_id", "experiment_decisions", ["account_id"])
    op.create_index("ix_experiment_decisions_sequence_id", "experiment_decisions", ["sequence_id"])


def downgrade() -> None:
    op.drop_index("ix_experiment_decisions_sequence_id", table_name="experiment_decisions")
    op.drop_index("ix_experiment_decisions_account_id", table_name="experiment_decisions")
    op.drop_table("experiment_decisions")
