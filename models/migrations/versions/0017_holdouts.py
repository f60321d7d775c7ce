"""holdouts (issue: analytics pool, item 5)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 04:00:00

``enrollments.held_out``: the enrollment was drawn into its sequence's holdout
group (``settings.holdout_percent``) when it was created. It walks the sequence
like the others but is sent no email, and the sequence's lift in conversions is
measured against these enrollments. Existing enrollments are all treated
(false). Downgrade drops the column; the engine then sends to everyone again.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table,
    # and SQLite accepts a NOT NULL column added with a default.
    op.add_column("enrollments", sa.Column("held_out", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    # Both backends drop a plain column in place (SQLite since 3.35), as 0012 does.
    op.execute("ALTER TABLE enrollments DROP COLUMN held_out")
