"""history import speed (issue: ml, item 1); a placeholder until it is needed

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-06 16:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

revision: str = "0038"
down_revision: str | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
