"""step transitions for the funnel (issue: analytics pool, item 1)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 04:00:00

A placeholder in the chain, filled in by the change that needs it.
"""
from __future__ import annotations

from collections.abc import Sequence

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
