"""account dkim keys

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 17:45:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('accounts', sa.Column('dkim_selector', sa.String(length=63), nullable=True))
    op.add_column('accounts', sa.Column('dkim_domain', sa.String(length=253), nullable=True))
    op.add_column('accounts', sa.Column('dkim_private_key', sa.Text(), nullable=True))


def downgrade() -> None:
    # Batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('dkim_private_key')
        batch.drop_column('dkim_domain')
        batch.drop_column('dkim_selector')
