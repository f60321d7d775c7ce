"""job leases: a dead worker's import is resumed

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 13:20:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_jobs_status_claimed", "jobs", ["status", "claimed_until"])


def downgrade() -> None:
    op.drop_index("ix_jobs_status_claimed", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("claimed_until")
