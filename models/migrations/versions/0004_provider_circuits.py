"""provider weights, circuit-breaker state, unique names per account

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 13:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("providers") as batch:
        batch.add_column(sa.Column("weight", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("circuit_state", sa.String(20), nullable=False, server_default="closed"))
        batch.add_column(sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("circuit_opened_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_unique_constraint("uq_providers_account_id_name", ["account_id", "name"])
    # The defaults only filled existing rows; the models set every value themselves.
    with op.batch_alter_table("providers") as batch:
        for column in ("weight", "circuit_state", "consecutive_failures"):
            batch.alter_column(column, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("providers") as batch:
        batch.drop_constraint("uq_providers_account_id_name", type_="unique")
        for column in ("last_success_at", "last_error", "paused_until", "circuit_opened_at",
                       "consecutive_failures", "circuit_state", "weight"):
            batch.drop_column(column)
