"""segment membership (issue: audiences and broadcasts, item 1)

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 10:20:00

``segment_members`` (models.segment.SegmentMember): who was in a segment at its
last check, for the "entered segment" trigger; ``segments.members_at``: when that
was (null: never checked). The subscriber_id index serves the cascade when a
subscriber is deleted.

``ix_events_engaged``: opens and clicks by (name, occurred_at), with the
subscriber, for segments' opened/clicked_within_days leaves (docs/segments.md,
"Indexes": chosen from EXPLAIN on 1,000,000 subscribers and 20,000,000 events).
Partial, so sends, deliveries and custom events pay nothing for it. Downgrade
drops all three.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

ENGAGED = sa.text("name IN ('opened', 'clicked')")

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("segments") as batch:
        batch.add_column(sa.Column("members_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "segment_members",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["segment_id"], ["segments.id"], name="fk_segment_members_segment_id_segments",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"],
                                name="fk_segment_members_subscriber_id_subscribers", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_segment_members"),
        sa.UniqueConstraint("segment_id", "subscriber_id", name="uq_segment_members_segment_id_subscriber_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_segment_members_subscriber_id", "segment_members", ["subscriber_id"])
    op.create_index("ix_events_engaged", "events", ["name", "occurred_at"], postgresql_include=["subscriber_id"],
                    postgresql_where=ENGAGED, sqlite_where=ENGAGED)


def downgrade() -> None:
    op.drop_index("ix_events_engaged", table_name="events")
    op.drop_index("ix_segment_members_subscriber_id", table_name="segment_members")
    op.drop_table("segment_members")
    with op.batch_alter_table("segments") as batch:
        batch.drop_column("members_at")
