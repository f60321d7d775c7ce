"""worker liveness (issue: scale-out, item 1)

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-06 11:00:00

``worker_heartbeats`` (models.worker_heartbeat): one row per worker process that
claims work, renewed every few seconds. ``messages.claimed_by``: the process whose
claim holds a ``sending`` row, written by the claim itself; deliberately not
indexed (models.message: the claim must stay a heap-only update).
``enrollments.claimed_by``: the process advancing an enrollment, stamped when the
advance starts and cleared when it ends, with a partial index of those rows only
(the tick's claim does not write it, so that claim stays heap-only too).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

HELD = sa.text("claimed_by IS NOT NULL")

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_messages", sa.Integer(), server_default="0", nullable=False),
        sa.Column("released_enrollments", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_worker_heartbeats"),
        sa.UniqueConstraint("worker_id", name="uq_worker_heartbeats_worker_id"),
        sqlite_autoincrement=True,
    )
    op.add_column("messages", sa.Column("claimed_by", sa.String(length=200), nullable=True))
    op.add_column("enrollments", sa.Column("claimed_by", sa.String(length=200), nullable=True))
    op.create_index("ix_enrollments_claimed_by", "enrollments", ["claimed_by"], postgresql_where=HELD,
                    sqlite_where=HELD)


def downgrade() -> None:
    # Not batch mode: rebuilding messages on SQLite cannot copy its computed column;
    # SQLite (3.35+) drops a plain column in place.
    op.drop_column("messages", "claimed_by")
    op.drop_index("ix_enrollments_claimed_by", table_name="enrollments")
    op.drop_column("enrollments", "claimed_by")
    op.drop_table("worker_heartbeats")
