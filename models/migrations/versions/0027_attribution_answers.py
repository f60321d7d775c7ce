"""cached attribution answers (issue: analytics pool, item 3 and its figures)

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 08:40:00

``attribution_answers``: per account and attribution query the answer the
analytics pool last computed (models.attribution_answer), so that
``GET /analytics/attribution`` for an account with ten million events answers from
a cache. Nothing existing changes; downgrade drops the table (the endpoint then
computes live again).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "attribution_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("result", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_attribution_answers_account_id_accounts",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_attribution_answers"),
        sa.UniqueConstraint("account_id", "key", name="uq_attribution_answers_account_id_key"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("attribution_answers")
