"""double opt-in and the subscribe form (issue: audiences and broadcasts, items 3 and 4)

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06 10:20:00

Two columns on accounts: ``opt_in`` ("single" or "double", default "single", so
accounts behave as before) and ``form_key``, the random public key addressing the
account's subscribe form (``/subscribe/<form_key>``), unique, and
``form_redirect_url``, where a browser goes after posting it (NULL: the platform's
own thank-you page). Existing accounts are each given a key here. Subscribers gain the status "pending" (a plain string
column), and a partial index of the pending ones by creation time, for the job
that expires them. Downgrade drops the index and the three columns; pending subscribers
are deleted first, as nothing older than this revision knows the status.
"""
from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.add_column("accounts", sa.Column("opt_in", sa.String(length=10), server_default="single", nullable=False))
    op.add_column("accounts", sa.Column("form_key", sa.String(length=32), nullable=True))
    op.add_column("accounts", sa.Column("form_redirect_url", sa.String(length=2000), nullable=True))
    accounts = sa.table("accounts", sa.column("id", sa.Integer()), sa.column("form_key", sa.String()))
    connection = op.get_bind()
    for (account_id,) in connection.execute(sa.select(accounts.c.id)).all():
        connection.execute(accounts.update().where(accounts.c.id == account_id)
                           .values(form_key=secrets.token_urlsafe(16)))
    op.create_index("ix_accounts_form_key", "accounts", ["form_key"], unique=True)
    op.create_index("ix_subscribers_pending_created_at", "subscribers", ["created_at"], unique=False,
                    postgresql_where=PENDING, sqlite_where=PENDING)


def downgrade() -> None:
    op.drop_index("ix_subscribers_pending_created_at", table_name="subscribers")
    op.execute("DELETE FROM subscribers WHERE status = 'pending'")
    op.drop_index("ix_accounts_form_key", table_name="accounts")
    # Batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("form_redirect_url")
        batch.drop_column("form_key")
        batch.drop_column("opt_in")
