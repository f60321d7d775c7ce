"""experiment holdout arm (issue: analytics pool, item 4)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 05:30:00

``experiment_holdouts``: one row per visit of an email step that its experiment's
``holdout_percent`` drew into the "no email" arm (models.ExperimentHoldout). The
experiments endpoint counts these visits and, for the ``converted`` metric, the
goal events after them. Nothing existing changes; downgrade drops the table.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experiment_holdouts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("sequence_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.Integer(), nullable=False),
        sa.Column("enrollment_id", sa.Integer(), nullable=True),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("visit", sa.Integer(), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_experiment_holdouts_account_id_accounts",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sequence_id"], ["sequences.id"],
                                name="fk_experiment_holdouts_sequence_id_sequences", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["step_id"], ["steps.id"], name="fk_experiment_holdouts_step_id_steps",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["enrollment_id"], ["enrollments.id"],
                                name="fk_experiment_holdouts_enrollment_id_enrollments", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"],
                                name="fk_experiment_holdouts_subscriber_id_subscribers", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_experiment_holdouts"),
        sa.UniqueConstraint("step_id", "enrollment_id", "visit",
                            name="uq_experiment_holdouts_step_id_enrollment_id_visit"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_experiment_holdouts_account_id", "experiment_holdouts", ["account_id"])
    op.create_index("ix_experiment_holdouts_subscriber_id", "experiment_holdouts", ["subscriber_id"])
    op.create_index("ix_experiment_holdouts_step_subscriber", "experiment_holdouts",
                    ["step_id", "subscriber_id", "held_at"])


def downgrade() -> None:
    op.drop_table("experiment_holdouts")
