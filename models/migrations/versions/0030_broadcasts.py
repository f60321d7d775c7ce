"""broadcasts (issue: audiences and broadcasts, item 2): a placeholder that changes nothing yet, kept so that work
on the issue's parts can land in any order

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 10:20:00
"""
from __future__ import annotations

from collections.abc import Sequence

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
