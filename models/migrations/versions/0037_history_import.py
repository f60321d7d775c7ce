"""imported events keep their own keys; uploads stored uncompressed (issue: ml, item 1)

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-06 16:30:00

A history import writes millions of events; claiming each one's key in
``event_keys`` (a second row and two index entries an event) was a fifth of its
database time. An imported event's key names its instant (audience.event_rows),
so the same event always falls in the same month: a unique index on (dedup_key,
occurred_at) over the imported rows, which a partitioned table can keep, skips a
repeat as well, and the trigger that claims keys in ``event_keys`` now leaves
imported rows to it (and no longer reads the setting the import switched it off with). Keys of
events imported before stay in ``event_keys`` until retention prunes them.

``ix_subscribers_account_id`` goes: the unique (account_id, email) index serves
every lookup by account, and with statistics that lag an import's new subscribers
the planner chose the single-column one to find an address, reading all of the
account's subscribers for each.

Building the unique index reads every month of events (it holds only the
imported ones) and blocks writes to ``events`` meanwhile: on a large table, run
the upgrade at a quiet hour.

``job_parts.data`` (an upload's 8 MB pieces) is stored without compression on
PostgreSQL: compressing CSV on the way in and out cost a second a million rows,
for space the parts give back when the job completes.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_IMPORTED = "source = 'import'"
_TRIGGER = ("CREATE TRIGGER events_dedup_key BEFORE INSERT ON events FOR EACH ROW WHEN (NEW.dedup_key IS NOT NULL"
            " AND {condition}) EXECUTE FUNCTION events_claim_dedup_key()")
_BEFORE = "current_setting('eseq.event_keys_claimed', true) IS DISTINCT FROM 'on'"
_AFTER = "NEW.source IS DISTINCT FROM 'import'"


def upgrade() -> None:
    op.drop_index("ix_subscribers_account_id", table_name="subscribers")
    op.create_index("uq_events_imported_key", "events", ["dedup_key", "occurred_at"], unique=True,
                    postgresql_where=sa.text(_IMPORTED), sqlite_where=sa.text(_IMPORTED))
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's trigger keeps claiming every key; its import checks event_keys first
    op.execute("DROP TRIGGER events_dedup_key ON events")
    op.execute(_TRIGGER.format(condition=_AFTER))
    op.execute("ALTER TABLE job_parts ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE job_parts ALTER COLUMN data SET STORAGE EXTENDED")
        op.execute("DROP TRIGGER events_dedup_key ON events")
        op.execute(_TRIGGER.format(condition=_BEFORE))
        op.execute("INSERT INTO event_keys (dedup_key, account_id, occurred_at) SELECT dedup_key, account_id,"
                   f" occurred_at FROM events WHERE {_IMPORTED} AND dedup_key IS NOT NULL ON CONFLICT DO NOTHING")
    op.drop_index("uq_events_imported_key", table_name="events")
    op.create_index("ix_subscribers_account_id", "subscribers", ["account_id"])
