"""bounded tables: retention, pruning, monthly partitions of events (issue: scale-out, item 4)

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-06 13:00:00

Accounts get three retention periods in days (raw events, message bodies, inbound
raw events; docs/operations.md#retention). ``retention_progress`` keeps, per
account, how far the message-body pruning has gone by id.

De-duplication moves out of ``events``: a unique ``dedup_key`` cannot stay on a
table partitioned by time (PostgreSQL wants the partition key in every unique
index, and a key such as ``opened:<message id>`` must stay unique across months).
``event_keys`` holds each key once (primary key); a BEFORE INSERT trigger on
``events`` claims the key there and skips the row when it was taken, so every
writer keeps its INSERT (… ON CONFLICT DO NOTHING) and a duplicate is still a
silent no-op, on both backends.

PostgreSQL: ``events`` becomes a table partitioned by month of ``occurred_at``
(primary key ``(id, occurred_at)``), with a partition per month from the oldest
event's to three months ahead and a DEFAULT partition; the rows are copied over
(one INSERT … SELECT; the table is unavailable for the migration's length). The
indexes are declared on the parent, so every partition has them. SQLite keeps one
table (its unique constraint dropped, the trigger added).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONTHS_AHEAD = 3
_COLUMNS = ("id, account_id, subscriber_id, message_id, name, dedup_key, source, properties, value, occurred_at,"
            " created_at, xact, message_ref")
_TABLE = """CREATE TABLE {name} (
    id integer NOT NULL DEFAULT nextval('events_id_seq'::regclass),
    account_id integer NOT NULL,
    subscriber_id integer,
    message_id integer,
    name varchar(100) NOT NULL,
    dedup_key varchar(300),
    source varchar(50) NOT NULL,
    properties jsonb NOT NULL,
    value double precision,
    occurred_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    xact bigint NOT NULL DEFAULT (pg_current_xact_id()::text)::bigint,
    message_ref varchar(300) DEFAULT NULL,
    CONSTRAINT {pk} PRIMARY KEY ({key})
){tail}"""
_INDEXES = (
    "CREATE INDEX ix_events_account_xact ON {t} (account_id, xact, id)",
    "CREATE INDEX ix_events_engaged ON {t} (name, occurred_at) INCLUDE (subscriber_id)"
    " WHERE name IN ('opened', 'clicked')",
    "CREATE INDEX ix_events_message_id ON {t} (message_id) WHERE message_id IS NOT NULL",
    "CREATE INDEX ix_events_subscriber_name ON {t} (subscriber_id, name, occurred_at)",
    "CREATE INDEX ix_events_valued ON {t} (account_id, subscriber_id) INCLUDE (occurred_at, value)"
    " WHERE value IS NOT NULL AND subscriber_id IS NOT NULL",
)
_FOREIGN_KEYS = (
    "ALTER TABLE {t} ADD CONSTRAINT fk_events_account_id_accounts FOREIGN KEY (account_id)"
    " REFERENCES accounts (id) ON DELETE CASCADE",
    "ALTER TABLE {t} ADD CONSTRAINT fk_events_message_id_messages FOREIGN KEY (message_id)"
    " REFERENCES messages (id) ON DELETE SET NULL",
    "ALTER TABLE {t} ADD CONSTRAINT fk_events_subscriber_id_subscribers FOREIGN KEY (subscriber_id)"
    " REFERENCES subscribers (id) ON DELETE CASCADE",
)
# The key claimed first wins; a row whose key was taken is skipped (RETURN NULL),
# as ON CONFLICT DO NOTHING skipped it when the key was unique on events.
_PG_FUNCTION = """
CREATE FUNCTION events_claim_dedup_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_keys (dedup_key, account_id, occurred_at)
    VALUES (NEW.dedup_key, NEW.account_id, NEW.occurred_at) ON CONFLICT DO NOTHING;
    IF FOUND THEN
        RETURN NEW;
    END IF;
    RETURN NULL;
END $$"""
# A writer that claims its keys itself, set-based (audience.event_writer's import),
# sets eseq.event_keys_claimed for its statement, and the per-row call is skipped.
_PG_TRIGGER = ("CREATE TRIGGER events_dedup_key BEFORE INSERT ON events FOR EACH ROW"
               " WHEN (NEW.dedup_key IS NOT NULL"
               " AND current_setting('eseq.event_keys_claimed', true) IS DISTINCT FROM 'on')"
               " EXECUTE FUNCTION events_claim_dedup_key()")
_SQLITE_TRIGGER = """
CREATE TRIGGER events_dedup_key BEFORE INSERT ON events WHEN NEW.dedup_key IS NOT NULL BEGIN
    SELECT RAISE(IGNORE) WHERE EXISTS (SELECT 1 FROM event_keys WHERE dedup_key = NEW.dedup_key);
    INSERT INTO event_keys (dedup_key, account_id, occurred_at) VALUES (NEW.dedup_key, NEW.account_id, NEW.occurred_at);
END"""


def _month(day: date, add: int = 0) -> date:
    months = day.year * 12 + day.month - 1 + add
    return date(months // 12, months % 12 + 1, 1)


def _partition_sql(start: date) -> str:
    """The same name and bounds as analytics.event_partitions.partition_name."""
    return (f"CREATE TABLE IF NOT EXISTS events_{start:%Y_%m} PARTITION OF events"
            f" FOR VALUES FROM ('{start:%Y-%m-%d} 00:00+00') TO ('{_month(start, 1):%Y-%m-%d} 00:00+00')")


def _retention_columns() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("retention_events_days", sa.Integer(), server_default="400", nullable=False))
        batch.add_column(sa.Column("retention_bodies_days", sa.Integer(), server_default="30", nullable=False))
        batch.add_column(sa.Column("retention_inbound_days", sa.Integer(), server_default="30", nullable=False))
    op.create_table(
        "retention_progress",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("messages_through", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_retention_progress_account_id_accounts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_progress")),
        sa.UniqueConstraint("account_id", name=op.f("uq_retention_progress_account_id")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "event_keys",
        sa.Column("dedup_key", sa.String(length=300), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_event_keys_account_id_accounts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dedup_key", name=op.f("pk_event_keys")),
    )
    op.create_index("ix_event_keys_account_occurred", "event_keys", ["account_id", "occurred_at"])


def upgrade() -> None:
    _retention_columns()
    op.execute("INSERT INTO event_keys (dedup_key, account_id, occurred_at)"
               " SELECT dedup_key, account_id, occurred_at FROM events WHERE dedup_key IS NOT NULL")
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("events", table_kwargs={"sqlite_autoincrement": True}) as batch:
            batch.drop_constraint("uq_events_dedup_key", type_="unique")
        op.execute(_SQLITE_TRIGGER)
        return
    bind = op.get_bind()
    oldest = bind.execute(sa.text("SELECT min(occurred_at) FROM events")).scalar()
    today = bind.execute(sa.text("SELECT (now() AT TIME ZONE 'UTC')::date")).scalar()
    op.execute("ALTER TABLE events RENAME TO events_unpartitioned")
    for index in ("ix_events_account_xact", "ix_events_engaged", "ix_events_message_id", "ix_events_subscriber_name",
                  "ix_events_valued"):
        op.execute(f"DROP INDEX {index}")
    for constraint in ("uq_events_dedup_key", "pk_events", "fk_events_account_id_accounts",
                       "fk_events_message_id_messages", "fk_events_subscriber_id_subscribers"):
        op.execute(f"ALTER TABLE events_unpartitioned DROP CONSTRAINT {constraint}")
    op.execute(_TABLE.format(name="events", pk="pk_events", key="id, occurred_at",
                             tail=" PARTITION BY RANGE (occurred_at)"))
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY events.id")
    month = _month(min(oldest.date(), today) if oldest else today)
    while month <= _month(today, MONTHS_AHEAD):
        op.execute(_partition_sql(month))
        month = _month(month, 1)
    op.execute("CREATE TABLE events_default PARTITION OF events DEFAULT")
    op.execute(f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM events_unpartitioned")
    op.execute("DROP TABLE events_unpartitioned")
    for statement in _INDEXES + _FOREIGN_KEYS:
        op.execute(statement.format(t="events"))
    op.execute(_PG_FUNCTION)
    op.execute(_PG_TRIGGER)
    op.execute("ANALYZE events")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER events_dedup_key")
        with op.batch_alter_table("events", table_kwargs={"sqlite_autoincrement": True}) as batch:
            batch.create_unique_constraint("uq_events_dedup_key", ["dedup_key"])
    else:
        op.execute("ALTER TABLE events RENAME TO events_partitioned")
        op.execute("ALTER TABLE events_partitioned RENAME CONSTRAINT pk_events TO pk_events_partitioned")
        for index in ("ix_events_account_xact", "ix_events_engaged", "ix_events_message_id",
                      "ix_events_subscriber_name", "ix_events_valued"):
            op.execute(f"ALTER INDEX {index} RENAME TO {index}_partitioned")
        op.execute(_TABLE.format(name="events", pk="pk_events", key="id", tail=""))
        op.execute("ALTER TABLE events ADD CONSTRAINT uq_events_dedup_key UNIQUE (dedup_key)")
        op.execute("ALTER SEQUENCE events_id_seq OWNED BY events.id")
        op.execute(f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM events_partitioned")
        op.execute("DROP TABLE events_partitioned")
        op.execute("DROP FUNCTION events_claim_dedup_key()")
        for statement in _INDEXES + _FOREIGN_KEYS:
            op.execute(statement.format(t="events"))
    op.drop_index("ix_event_keys_account_occurred", table_name="event_keys")
    op.drop_table("event_keys")
    op.drop_table("retention_progress")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("retention_inbound_days")
        batch.drop_column("retention_bodies_days")
        batch.drop_column("retention_events_days")
