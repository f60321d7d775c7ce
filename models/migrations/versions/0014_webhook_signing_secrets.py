"""webhook signing secret shown and rotatable (issue 16 item 11)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 00:30:00

Three nullable columns on accounts: the current webhook signing secret, the one it
replaced and when that one stops signing. Existing accounts are left NULL, which
signs with the secret derived from SECRET_KEY exactly as before (the migration
cannot derive it: it does not read SECRET_KEY, and must not seal without
ESEQ_SECRETS_KEYS); accounts.webhook_secret stores it the first time it is shown.

Downgrade drops the columns: calls are signed with the derived secret again, so
receivers given a rotated (random) secret stop verifying until it is re-shared.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("webhook_secret", sa.Text(), nullable=True))
    op.add_column("accounts", sa.Column("webhook_secret_previous", sa.Text(), nullable=True))
    op.add_column("accounts", sa.Column("webhook_secret_previous_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("webhook_secret_previous_until")
        batch.drop_column("webhook_secret_previous")
        batch.drop_column("webhook_secret")
