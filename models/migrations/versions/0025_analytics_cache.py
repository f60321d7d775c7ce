"""cached sequence-level analyses (issue: analytics pool, holdout and experiment arms)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 07:10:00

A placeholder in the chain, filled in by the change that needs it.
"""
from __future__ import annotations

from collections.abc import Sequence

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
