"""an account's time zone (issue: operator console)

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-06 13:10:00

``accounts.timezone``: the IANA zone the console shows the account's times in
(the API keeps answering in UTC). Existing accounts get UTC, which is what every
time they saw so far was in.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"))


def downgrade() -> None:
    op.drop_column("accounts", "timezone")
