"""enrollments: the tick's claim and the advance's owner stamp as heap-only updates

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-07 10:50:00

Every email from a sequence updates its enrollment three times: the tick's claim
(``claimed_until``), the advance's owner stamp (``claimed_by``) and the advance
itself (its step and ``next_run_at``). None was a heap-only update: pages were
filled whole, so no new version found room on its row's page, and the stamp
wrote ``claimed_by``, which ix_enrollments_claimed_by named. Each such update
wrote a new entry into every index of the table (eight).

Fillfactor 70 keeps room in new pages, as for messages (migration 0010), and the
index goes: the tick's release of a dead worker's enrollments finds them through
ix_enrollments_due instead, since an enrollment being advanced is active and due
(sequencing.claims.release_claims). The claim and the stamp then change no
indexed column, so PostgreSQL writes both in place when the page has room.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0039"
down_revision: str | None = "0038"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HELD = sa.text("claimed_by IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_enrollments_claimed_by", table_name="enrollments")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE enrollments SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE enrollments RESET (fillfactor)")
    op.create_index("ix_enrollments_claimed_by", "enrollments", ["claimed_by"], postgresql_where=HELD,
                    sqlite_where=HELD)
