"""ml models and scores (issue: ml, items 3-6)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 04:00:00

``ml_models``: the registry, one row per training run (queued, training under a
lease, ready with its artifact and metrics, or failed); ``promoted`` when the run
may be used, ``live`` on the one model per account and kind that scoring uses.
``subscriber_scores``: each subscriber's latest scores, one row per subscriber.
Downgrade drops both; nothing below the ml service reads them.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "ml_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("params", JSON, nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("artifact", sa.LargeBinary(), nullable=True),
        sa.Column("artifact_sha256", sa.String(length=64), nullable=True),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_ml_models_account_id_accounts",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_ml_models"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_ml_models_account_id_kind_status", "ml_models", ["account_id", "kind", "status"])
    op.create_index("ix_ml_models_status_claimed_until", "ml_models", ["status", "claimed_until"])
    op.create_table(
        "subscriber_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("churn_risk", sa.Float(), nullable=True),
        sa.Column("engagement", sa.Float(), nullable=True),
        sa.Column("best_send_hour", sa.SmallInteger(), nullable=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("churn_model_id", sa.Integer(), nullable=True),
        sa.Column("engagement_model_id", sa.Integer(), nullable=True),
        sa.Column("send_time_model_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_subscriber_scores_account_id_accounts",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"],
                                name="fk_subscriber_scores_subscriber_id_subscribers", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_subscriber_scores"),
        sa.UniqueConstraint("subscriber_id", name="uq_subscriber_scores_subscriber_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_subscriber_scores_account_id_subscriber_id", "subscriber_scores",
                    ["account_id", "subscriber_id"])


def downgrade() -> None:
    op.drop_index("ix_subscriber_scores_account_id_subscriber_id", table_name="subscriber_scores")
    op.drop_table("subscriber_scores")
    op.drop_index("ix_ml_models_status_claimed_until", table_name="ml_models")
    op.drop_index("ix_ml_models_account_id_kind_status", table_name="ml_models")
    op.drop_table("ml_models")
