"""per-subscriber activity folded for account analyses (issue: analytics pool, item 6)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 05:30:00

A placeholder in the chain, filled in by the change that needs it.
"""
from __future__ import annotations

from collections.abc import Sequence

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
