"""messages: no index on status, so the send claim is a heap-only update

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 16:40:00

The claim (queued -> sending) changed ``status``, which ix_messages_status_retry
named, so PostgreSQL wrote a new entry into each of the table's seven indexes for
it. That index goes; the tick's sweep of unfinished rows uses a partial index on
``retry_at`` over ``settled``, a stored column the database derives from
``status`` (true once sent, failed or suppressed), whose value the claim leaves
as it was. PostgreSQL can then write the claim as a heap-only update, on the
row's own page when it has room: fillfactor 70 keeps that room in new pages.

SQLite cannot add a stored generated column in place: the table is rebuilt
(batch mode).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SETTLED = "status IN ('sent', 'failed', 'suppressed')"
UNSETTLED = sa.text("NOT settled")


def upgrade() -> None:
    settled = sa.Column("settled", sa.Boolean(), sa.Computed(SETTLED, persisted=True), nullable=True)
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("messages", settled)
        op.execute("ALTER TABLE messages SET (fillfactor = 70)")
    else:
        with op.batch_alter_table("messages", recreate="always") as batch:
            batch.add_column(settled)
    op.create_index("ix_messages_unsettled", "messages", ["retry_at"], unique=False,
                    postgresql_where=UNSETTLED, sqlite_where=UNSETTLED)
    op.drop_index("ix_messages_status_retry", table_name="messages")


def downgrade() -> None:
    op.create_index("ix_messages_status_retry", "messages", ["status", "retry_at"], unique=False)
    op.drop_index("ix_messages_unsettled", table_name="messages")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE messages RESET (fillfactor)")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("settled")
