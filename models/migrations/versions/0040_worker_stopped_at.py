"""worker_heartbeats.stopped_at: a clean stop told apart from a kill

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-07 12:40:00

A worker stopping cleanly marks its row (core.liveness.mark_stopped). A silent
row without the mark is a killed process, which may have held tasks taken from
the broker and not started; the tick then hands out again what was handed over
and not started, as it already did for a worker that died holding claims.
Existing rows stay unmarked: a worker started before this version stops without
the mark, and its stop costs one such hand-out, which the claims turn away.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0040"
down_revision: str | None = "0039"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("worker_heartbeats", sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("worker_heartbeats", "stopped_at")
