"""imported history events (issue: ml, item 1)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 04:00:00

``job_parts``: an event import's upload (up to 1 GiB) stored in parts of a few MB
as the request streams in, so any worker can read it one part at a time.
``events.message_ref``: the other platform's message id of an imported event.
Imported events are marked ``source = 'import'`` (no schema change) and keyed
for de-duplication through the existing unique ``events.dedup_key``. Downgrade
drops both; imported events stay, without their message_ref.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_job_parts_job_id_jobs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_job_parts"),
        sa.UniqueConstraint("job_id", "part", name="uq_job_parts_job_id_part"),
        sqlite_autoincrement=True,
    )
    # Nullable, its default NULL: instant on PostgreSQL however many events exist,
    # and a plain ALTER TABLE on SQLite (no rebuild of the table).
    op.add_column("events", sa.Column("message_ref", sa.String(length=300), server_default=sa.text("NULL"),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("message_ref")
    op.drop_table("job_parts")
