"""AI drafts, their usage and the answer cache (issue: AI drafting)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 07:10:00

``ai_drafts``: one row per draft request (queued, running under a lease, ready
with its result and pre-flight report, or failed with the reason), its token
usage and cost, the cache key that lets an identical request reuse a ready
answer, and what applying it made. The same statements on PostgreSQL and SQLite
(JSON is JSONB on PostgreSQL; SQLite keeps ids unreused with AUTOINCREMENT).
Downgrade drops the table; nothing else reads it.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "ai_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("request", JSON, nullable=False),
        sa.Column("sequence_id", sa.Integer(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("sequence_version", sa.Integer(), nullable=True),
        sa.Column("cache_key", sa.String(length=64), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("preflight", JSON, nullable=True),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("model_seconds", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied", JSON, nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_ai_drafts_account_id_accounts",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_ai_drafts"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_ai_drafts_account_id_created_at", "ai_drafts", ["account_id", "created_at"])
    op.create_index("ix_ai_drafts_account_id_cache_key", "ai_drafts", ["account_id", "cache_key"])
    op.create_index("ix_ai_drafts_status_due_at", "ai_drafts", ["status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_ai_drafts_status_due_at", table_name="ai_drafts")
    op.drop_index("ix_ai_drafts_account_id_cache_key", table_name="ai_drafts")
    op.drop_index("ix_ai_drafts_account_id_created_at", table_name="ai_drafts")
    op.drop_table("ai_drafts")
