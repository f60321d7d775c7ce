"""per-subscriber activity for the account analyses: two partial indexes of events (issue: analytics pool, item 6)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 05:30:00

The cohorts, RFM and LTV group an account's events per subscriber. Two partial
indexes keep those groups in subscriber order, so PostgreSQL reads them by an
index-only scan and aggregates each subscriber as it passes, instead of scanning
every event and hashing a million groups (analytics.account_data):

- ``ix_events_valued`` (account_id, subscriber_id) INCLUDE (occurred_at, value)
  WHERE value IS NOT NULL: the purchases (RFM, LTV). Only events with a value
  are in it, so other events' inserts do not touch it.
- ``ix_events_engaged`` (account_id, subscriber_id, occurred_at) WHERE name IN
  ('opened', 'clicked'): the engagement of the cohort table. Every open and click
  insert updates it (one more btree entry, as each of the events' other indexes).

Both only WHERE subscriber_id IS NOT NULL. SQLite has no INCLUDE (nor needs
the speed): there the first is on the two keys alone. Building them reads the events table
once (about 14 s for both at 10,000,000 events on the bench's machine) and
blocks event writes meanwhile. Downgrade drops them.
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VALUED = "value IS NOT NULL AND subscriber_id IS NOT NULL"
ENGAGED = "name IN ('opened', 'clicked') AND subscriber_id IS NOT NULL"


def upgrade() -> None:
    include = " INCLUDE (occurred_at, value)" if op.get_bind().dialect.name == "postgresql" else ""
    op.execute(f"CREATE INDEX ix_events_valued ON events (account_id, subscriber_id){include} WHERE {VALUED}")
    op.execute(f"CREATE INDEX ix_events_engaged ON events (account_id, subscriber_id, occurred_at) WHERE {ENGAGED}")


def downgrade() -> None:
    op.execute("DROP INDEX ix_events_engaged")
    op.execute("DROP INDEX ix_events_valued")
