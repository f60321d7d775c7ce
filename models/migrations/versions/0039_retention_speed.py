"""retention's pruning speed (issue: scale-out, item 4); a placeholder until it is needed

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-06 16:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

revision: str = "0039"
down_revision: str | None = "0038"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
