"""sequence rollups by day (issue: operator console, item 5)

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-06 14:00:00

``ix_sequence_rollups_day``: /metrics sums today's outcomes over every account
(``eseq_outcomes_today``) at each scrape; without it that read walks a table that
grows by one row per step, variant, metric and day.
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_sequence_rollups_day", "sequence_rollups", ["day", "metric"])


def downgrade() -> None:
    op.drop_index("ix_sequence_rollups_day", table_name="sequence_rollups")
