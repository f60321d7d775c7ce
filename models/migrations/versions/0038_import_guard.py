"""deleting or readdressing subscribers waits for the account's history import chunk (issue: ml, item 1)

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-06 21:40:00

A chunk of imported events skips the per-row foreign-key checks where the role
may (audience.event_writer). It used to stand in for them by locking every
subscriber it named ``FOR KEY SHARE``: a lock, a dirtied page and a WAL record
per subscriber per chunk, a sixth of an import's time when each row names another
address. Now the chunk takes one transaction-level advisory lock of its account,
exclusively, and this trigger makes every deletion of a subscriber, by any path
(an erasure, a delete through the API, the cascade of an account's deletion),
take the same lock shared first: the deletion waits for the chunk's commit and
its cascade then removes the chunk's events too, as with the checks.

Shared for deletions, so they never wait on one another; exclusive for the import,
so two imports of one account write their chunks in turn. Under
``session_replication_role = replica`` (the import's own transactions) the
trigger does not fire; they delete no subscriber.

Each deletion also advances ``subscriber_address_changes`` once it holds the lock. An
import keeps the ids its committed chunks resolved and trusts them in a later
chunk only if the sequence has not moved since (read under the chunk's lock):
a deletion in between, of any subscriber, makes it look them up again. A change
of a subscriber's address does the same (its own trigger, the same function): a
kept id would otherwise go on taking the old address's rows.
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0038"
down_revision: str | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The advisory lock's first key; the second is the account's id (audience.event_writer.IMPORT_LOCK).
_NAMESPACE = 1_937_008_968
_FUNCTION = f"""
CREATE FUNCTION subscribers_wait_for_import() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({_NAMESPACE}, OLD.account_id);
    PERFORM nextval('subscriber_address_changes');
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's import checks every reference and has one writer at a time
    op.execute("CREATE SEQUENCE subscriber_address_changes")
    op.execute(_FUNCTION)
    op.execute("CREATE TRIGGER subscribers_wait_for_import BEFORE DELETE ON subscribers FOR EACH ROW"
               " EXECUTE FUNCTION subscribers_wait_for_import()")
    op.execute("CREATE TRIGGER subscribers_readdressed_wait_for_import BEFORE UPDATE OF email ON subscribers"
               " FOR EACH ROW WHEN (OLD.email IS DISTINCT FROM NEW.email)"
               " EXECUTE FUNCTION subscribers_wait_for_import()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER subscribers_readdressed_wait_for_import ON subscribers")
    op.execute("DROP TRIGGER subscribers_wait_for_import ON subscribers")
    op.execute("DROP FUNCTION subscribers_wait_for_import()")
    op.execute("DROP SEQUENCE subscriber_address_changes")
