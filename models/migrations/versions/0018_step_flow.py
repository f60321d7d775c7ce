"""step transitions for the funnel (issue: analytics pool, item 1)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 04:00:00

``step_transitions``: append-only counts of enrollments that entered, passed or
left a step, written by the engine in the transaction of the move (on PostgreSQL
with the inserting transaction's id in ``xact``, as ``events.xact``).
``step_flow_rollups``: those counts folded per sequence, position, day and kind;
``rollup_watermarks.flow_xact``/``flow_id``: how far the fold has read.

Backfill (an approximation, for history only): the engine recorded no path before
this revision, so each existing enrollment is counted from where it is now, as
the funnel used to count it: entered and passed every step before its position,
entered the step at its position, and left there as its status says (waiting
ones are simply not passed). Gotos back and skip-ahead branches taken before the
upgrade are therefore not told apart; everything after it is exact. The
backfilled counts are dated the day of the upgrade. Downgrade drops the tables
and columns (the funnel code of that revision reads positions again).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTOINCREMENT = {"sqlite_autoincrement": True}
LEFT = ("unsubscribed", "bounced", "complained")


def upgrade() -> None:
    op.add_column("rollup_watermarks", sa.Column("flow_xact", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("rollup_watermarks", sa.Column("flow_id", sa.BigInteger(), server_default="0", nullable=False))
    op.create_table(
        "step_transitions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("sequence_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("xact", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_step_transitions_account_id_accounts",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sequence_id"], ["sequences.id"], name="fk_step_transitions_sequence_id_sequences",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_step_transitions"),
        **AUTOINCREMENT,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE step_transitions ALTER COLUMN xact SET DEFAULT (pg_current_xact_id()::text::bigint)")
    op.create_index("ix_step_transitions_account_xact", "step_transitions", ["account_id", "xact", "id"])
    op.create_index("ix_step_transitions_sequence_xact", "step_transitions", ["sequence_id", "xact", "id"])
    op.create_table(
        "step_flow_rollups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("sequence_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_step_flow_rollups_account_id_accounts",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sequence_id"], ["sequences.id"], name="fk_step_flow_rollups_sequence_id_sequences",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_step_flow_rollups"),
        sa.UniqueConstraint("sequence_id", "position", "day", "kind",
                            name="uq_step_flow_rollups_sequence_id_position_day_kind"),
        **AUTOINCREMENT,
    )
    op.create_index("ix_step_flow_rollups_account_id", "step_flow_rollups", ["account_id"])
    _backfill(op.get_bind())


def _ending(status: str, reason: str | None) -> str | None:
    if status in ("active", "paused"):
        return None
    if status != "exited":
        return status  # completed, failed
    reason = reason or ""
    if reason.startswith("goal:"):
        return "goal"
    return "left" if reason in LEFT or reason.startswith("subscriber_") else "exit"


def _backfill(bind: sa.engine.Connection) -> None:
    lengths = dict(bind.execute(sa.text("SELECT sequence_id, count(*) FROM steps GROUP BY sequence_id")).all())
    counts: Counter[tuple[int, int, int, str]] = Counter()
    for account, sequence, position, status, reason, n in bind.execute(sa.text(
            "SELECT account_id, sequence_id, current_step, status,"
            " CASE WHEN exit_reason LIKE 'goal:%' THEN 'goal:' ELSE exit_reason END, count(*) FROM enrollments"
            " GROUP BY account_id, sequence_id, current_step, status,"
            " CASE WHEN exit_reason LIKE 'goal:%' THEN 'goal:' ELSE exit_reason END")):
        length = int(lengths.get(sequence, 0))
        at = min(int(position), length)
        for passed in range(at):
            counts[account, sequence, passed, "entered"] += n
            counts[account, sequence, passed, "passed"] += n
        if at < length:
            counts[account, sequence, at, "entered"] += n
        ending = _ending(status, reason)
        if ending is not None:
            counts[account, sequence, at, ending] += n
    if not counts:
        return
    today = datetime.now(timezone.utc).date()
    rollups = sa.table("step_flow_rollups", sa.column("account_id"), sa.column("sequence_id"), sa.column("position"),
                       sa.column("day"), sa.column("kind"), sa.column("n"))
    bind.execute(rollups.insert(), [{"account_id": a, "sequence_id": s, "position": p, "day": today, "kind": k, "n": n}
                                    for (a, s, p, k), n in sorted(counts.items())])


def downgrade() -> None:
    op.drop_index("ix_step_flow_rollups_account_id", table_name="step_flow_rollups")
    op.drop_table("step_flow_rollups")
    op.drop_index("ix_step_transitions_sequence_xact", table_name="step_transitions")
    op.drop_index("ix_step_transitions_account_xact", table_name="step_transitions")
    op.drop_table("step_transitions")
    with op.batch_alter_table("rollup_watermarks") as batch:
        batch.drop_column("flow_id")
        batch.drop_column("flow_xact")
