"""enrollments: crashes and error, so one enrollment that cannot be advanced fails alone

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 00:30:00

An advance batch ran in one transaction: an enrollment whose walk raised (or
whose outbox row the database refused) rolled back the whole batch, other
accounts' enrollments included, and the lease sent them all round again every
few minutes, forever. The batch is now retried one enrollment at a time after a
failure (sequencing.engine), and each enrollment counts its own ``crashes``:
advances that raised, and leases that ran out because the worker died holding
it. ``error`` keeps the last one's reason while it is retried; after a few in a
row the enrollment is failed with that reason in ``exit_reason``.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column("enrollments", sa.Column("crashes", sa.Integer(), server_default="0", nullable=False))
    op.add_column("enrollments", sa.Column("error", sa.String(length=200), nullable=True))


def downgrade() -> None:
    # Both backends drop a plain column in place (SQLite since 3.35), as 0011 does.
    op.execute("ALTER TABLE enrollments DROP COLUMN error")
    op.execute("ALTER TABLE enrollments DROP COLUMN crashes")
