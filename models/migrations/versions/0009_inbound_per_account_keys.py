"""inbound events de-duplicated per account; signature nonces in their own table

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:00:00

The unique keys on inbound_events were (provider, provider_event_id) and
(provider, nonce): one account could store an event id first and have another
account's real event dropped as its duplicate. Both become per account, as unique
indexes on COALESCE(account_id, 0) (the environment endpoint stores NULL, and NULLs
never conflict; SQLite has no NULLS NOT DISTINCT, so the same expression serves
both backends). Nonces move to inbound_nonces, recorded whether or not the events
of their request were new (a token used to be kept only on its request's first
event row, so it was lost when that event was already stored).

SQLite: the unique constraints are dropped in batch mode (a table rebuild), and the
expression index is created after it. SQLite does not reflect expression indexes,
so a later batch rebuild of inbound_events must create this index again.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACCOUNT_KEY = sa.text("coalesce(account_id, 0)")


def upgrade() -> None:
    op.create_table(
        "inbound_nonces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("nonce", sa.String(length=300), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_inbound_nonces_account_id_accounts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_nonces")),
    )
    op.create_index(op.f("ix_inbound_nonces_account_id"), "inbound_nonces", ["account_id"], unique=False)
    op.create_index(op.f("ix_inbound_nonces_received_at"), "inbound_nonces", ["received_at"], unique=False)
    op.create_index("uq_inbound_nonces_account_provider_nonce", "inbound_nonces",
                    [ACCOUNT_KEY, "provider", "nonce"], unique=True)
    # Tokens already seen stay refused (they were unique per provider, so per account too).
    op.execute("INSERT INTO inbound_nonces (account_id, provider, nonce, received_at) "
               "SELECT account_id, provider, nonce, received_at FROM inbound_events WHERE nonce IS NOT NULL")
    with op.batch_alter_table("inbound_events") as batch:
        batch.drop_constraint("uq_inbound_events_provider_provider_event_id", type_="unique")
        batch.drop_constraint("uq_inbound_events_provider_nonce", type_="unique")
        batch.drop_column("nonce")
    op.create_index("uq_inbound_events_account_provider_event_id", "inbound_events",
                    [ACCOUNT_KEY, "provider", "provider_event_id"], unique=True)


def downgrade() -> None:
    # Fails if two accounts stored the same provider event id since the upgrade:
    # the old global key cannot hold both, and which to drop is not ours to guess.
    # The nonces are dropped: a token older than its provider's age window (9 hours
    # for Mailgun) is refused by its timestamp anyway.
    op.drop_index("uq_inbound_events_account_provider_event_id", table_name="inbound_events")
    with op.batch_alter_table("inbound_events") as batch:
        batch.add_column(sa.Column("nonce", sa.String(length=300), nullable=True))
        batch.create_unique_constraint("uq_inbound_events_provider_provider_event_id", ["provider", "provider_event_id"])
        batch.create_unique_constraint("uq_inbound_events_provider_nonce", ["provider", "nonce"])
    op.drop_index("uq_inbound_nonces_account_provider_nonce", table_name="inbound_nonces")
    op.drop_index(op.f("ix_inbound_nonces_received_at"), table_name="inbound_nonces")
    op.drop_index(op.f("ix_inbound_nonces_account_id"), table_name="inbound_nonces")
    op.drop_table("inbound_nonces")
