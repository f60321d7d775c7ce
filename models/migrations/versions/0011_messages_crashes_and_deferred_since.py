"""messages: crashes and deferred_since, so waiting for a provider never fails a message

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 07:00:00

``attempts`` counted every try, and the eighth transient failure failed the
message: an outage of about an hour (backoff 30 s, 1 min, 2 min ...) dropped
everything queued behind it. Two columns now say what the limit was for:
``crashes`` counts tries whose worker died holding the row (a message that kills
its worker every time is still abandoned after a few), and ``deferred_since``
marks the first transient failure, from which a message is retried for
ESEQ_RETRY_HOURS before it expires.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column("messages", sa.Column("crashes", sa.Integer(), server_default="0", nullable=False))
    op.add_column("messages", sa.Column("deferred_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Not batch mode: rebuilding the table on SQLite would copy the generated
    # ``settled`` column (0010), which it refuses; both backends drop in place.
    op.execute("ALTER TABLE messages DROP COLUMN deferred_since")
    op.execute("ALTER TABLE messages DROP COLUMN crashes")
