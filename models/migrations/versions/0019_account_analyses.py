"""cached account analyses: cohorts, RFM, LTV (issue: analytics pool, item 6)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 04:00:00

``account_analyses``: per account and kind (cohorts, rfm, ltv) the answer the
analytics pool last computed, its status and the data it was computed from
(models.account_analysis). Downgrade drops the table; the endpoints go with it.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_analyses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_event_id", sa.BigInteger(), nullable=False),
        sa.Column("source_subscriber_id", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("result", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_account_analyses_account_id_accounts",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_account_analyses"),
        sa.UniqueConstraint("account_id", "kind", name="uq_account_analyses_account_id_kind"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_account_analyses_account_id", "account_analyses", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_account_analyses_account_id", table_name="account_analyses")
    op.drop_table("account_analyses")
