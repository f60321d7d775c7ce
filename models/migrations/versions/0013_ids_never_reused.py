"""ids never reused: every SQLite table rebuilt with AUTOINCREMENT (issue 16 item 4)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 00:30:00

Without AUTOINCREMENT, SQLite gives a new row the highest id + 1, so deleting
the newest row hands its id out again: after account A erased a subscriber, B's
next message got the id of A's last one, and A's old one-click link unsubscribed
B's subscriber. SQLite cannot add AUTOINCREMENT to a table in place, so each
table is rebuilt (batch mode copies every row, ids included); sqlite_sequence
then starts each table from its highest id. The rebuild runs with foreign keys
off (models/migrations/env.py), as SQLite's own procedure for altering a table
requires: dropping the old table would otherwise cascade into its children.

PostgreSQL's sequences never hand an id out twice: nothing to rebuild there.
Downgrading rebuilds the tables as they were (ids kept; reuse possible again).

Also, on both backends: addresses stored before every way in used one
normaliser (issue 16 item 3) are put in its form. POST /events stored the
address lower-cased as given (``ada@xn--bcher-kva.de``), and unsubscribing or a
bounce of that subscriber suppressed that spelling, so the normal form
(``ada@bücher.de``) was neither found nor held by them. A suppression whose
normal form is already listed is dropped (the address stays suppressed). A
subscriber whose normal form is already another subscriber of the account is
left as it is: merging two people's histories is not a migration's to guess,
and the sender compares suppressions in normal form, so both are held alike.
Downgrading keeps the normal forms, which older code reads as well.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every table of the schema at this revision, parents before children.
TABLES = (
    "accounts", "api_keys", "templates", "sequences", "steps", "subscribers", "suppressions", "providers",
    "enrollments", "messages", "events", "jobs", "webhook_deliveries", "inbound_events", "inbound_nonces",
    "warming_plans", "warming_days", "warming_adjustments",
)


SETTLED = "status IN ('sent', 'failed', 'suppressed')"  # migration 0010's


def _indexes(table: str) -> dict[str, str]:
    return dict(op.get_bind().exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        (table,)).all())


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        before = _indexes(table)
        with op.batch_alter_table(table, recreate="always",
                                  table_kwargs={"sqlite_autoincrement": autoincrement}) as batch:
            if table == "messages":
                # A generated column cannot be copied into: declared anew, SQLite
                # computes it for each copied row.
                batch.drop_column("settled")
                batch.add_column(sa.Column("settled", sa.Boolean(), sa.Computed(SETTLED, persisted=True)))
        # Reflection skips indexes on expressions (inbound_events' and
        # inbound_nonces' unique coalesce(account_id, 0) keys): made again as they were.
        for name in before.keys() - _indexes(table).keys():
            op.execute(before[name])


def _normalise(table: str) -> None:
    from audience.fields import address_key  # the one normaliser, as of this revision

    rows = sa.table(table, sa.column("id", sa.Integer), sa.column("account_id", sa.Integer),
                    sa.column("email", sa.String))
    bind = op.get_bind()
    # Every row is read (no SQL finds them all: SQLite's lower() is ASCII-only),
    # streamed; only the few to change are kept.
    found = bind.execute(sa.select(rows.c.id, rows.c.account_id, rows.c.email).execution_options(yield_per=10_000))
    changes = [(row_id, account_id, normal) for row_id, account_id, email in found
               if (normal := address_key(email)) != email]
    for row_id, account_id, normal in changes:
        taken = bind.execute(sa.select(rows.c.id).where(rows.c.account_id == account_id, rows.c.email == normal)
                             .limit(1)).first()
        if taken is None:
            bind.execute(rows.update().where(rows.c.id == row_id).values(email=normal))
        elif table == "suppressions":
            bind.execute(rows.delete().where(rows.c.id == row_id))


def upgrade() -> None:
    _rebuild(True)
    _normalise("suppressions")
    _normalise("subscribers")


def downgrade() -> None:
    _rebuild(False)
