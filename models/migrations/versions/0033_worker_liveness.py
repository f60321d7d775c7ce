"""worker liveness (issue: scale-out, item 1): a placeholder that changes nothing
yet, kept so that work on the issue's parts can land in any order

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-06 11:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
