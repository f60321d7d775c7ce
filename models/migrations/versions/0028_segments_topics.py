"""segments and subscription topics (issue: audiences and broadcasts, items 1 and 4)

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 10:20:00

``segments`` (models.segment): an account's saved audience filters. ``topics`` and
``topic_subscriptions`` (models.topic): subscription topics and who chose each.
Nothing existing changes; downgrade drops the three tables.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _account(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=f"fk_{table}_account_id_accounts",
                                   ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("filter", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _account("segments"),
        sa.PrimaryKeyConstraint("id", name="pk_segments"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_segments_account_id", "segments", ["account_id"])
    op.create_table(
        "topics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _account("topics"),
        sa.PrimaryKeyConstraint("id", name="pk_topics"),
        sa.UniqueConstraint("account_id", "key", name="uq_topics_account_id_key"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "topic_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _account("topic_subscriptions"),
        sa.ForeignKeyConstraint(["topic_id"], ["topics.id"], name="fk_topic_subscriptions_topic_id_topics",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"],
                                name="fk_topic_subscriptions_subscriber_id_subscribers", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_topic_subscriptions"),
        sa.UniqueConstraint("topic_id", "subscriber_id", name="uq_topic_subscriptions_topic_id_subscriber_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_topic_subscriptions_subscriber_id", "topic_subscriptions", ["subscriber_id"])


def downgrade() -> None:
    op.drop_table("topic_subscriptions")
    op.drop_table("topics")
    op.drop_index("ix_segments_account_id", table_name="segments")
    op.drop_table("segments")
