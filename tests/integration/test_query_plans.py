"""Batched writes must find their rows by key at every table size.

The write-backs join a JSON recordset the planner cannot see into (it guesses 100
rows). Against a table of tens or hundreds of thousands of rows, that guess made
each write a hash join over a full scan of the table, once per group commit and
per engine batch. These tests run the real statements' plans on tables of that
size, analysed as autovacuum would leave them."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import text

from delivery.outbox import Accepted, mark_sent
from models import Enrollment, db
from models.bulk import update_rows
from sequencing.claims import claim_enrollments, release_claims, take_claims
from tests.support import factories
from tests.support.engine import on_each_statement

ROWS = 20_000
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def seed(rows: int = ROWS) -> tuple[list[int], list[int]]:
    """``rows`` enrollments and ``rows`` sending messages, analysed; their ids."""
    account = factories.account()
    sequence = factories.sequence(account, [{"type": "email", "subject": "Hi", "html": "<p>Hi</p>"}])
    with db.get_engine().begin() as conn:
        conn.execute(text("""
            INSERT INTO subscribers (account_id, email, status, attributes, tags, created_at, updated_at)
            SELECT :a, 'reader' || g || '@example.test', 'active', '{}', '[]', now(), now()
            FROM generate_series(1, :n) g"""), {"a": account, "n": rows})
        enrollments = list(conn.scalars(text("""
            INSERT INTO enrollments (account_id, sequence_id, subscriber_id, instance_key, run, status, current_step,
                                     next_run_at, state, enrolled_at, updated_at)
            SELECT :a, :s, id, '', 1, 'active', 0, now(), '{}', now(), now() FROM subscribers WHERE account_id = :a
            RETURNING id"""), {"a": account, "s": sequence}))
        messages = list(conn.scalars(text("""
            INSERT INTO messages (account_id, subscriber_id, to_email, status, attempts, idempotency_key, meta,
                                  created_at, updated_at)
            SELECT :a, id, email, 'sending', 1, 'plan-' || id, '{}', now(), now()
            FROM subscribers WHERE account_id = :a RETURNING id"""), {"a": account}))
    with db.get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE subscribers, enrollments, messages, events"))
    return enrollments, messages


@contextmanager
def plans_of(table: str) -> Iterator[list[str]]:
    """The plan of each statement run meanwhile that writes ``table`` (EXPLAIN of the
    very statement and parameters, run just before it)."""
    plans: list[str] = []

    def explain(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("UPDATE", "WITH")) and f"UPDATE {table} " in statement:
            cursor.execute("EXPLAIN " + statement, parameters)
            plans.append("\n".join(row[0] for row in cursor.fetchall()))

    with on_each_statement(explain):
        yield plans


def assert_by_key(plan: str, table: str) -> None:
    assert f"Seq Scan on {table}" not in plan, plan
    assert f"Index Scan using pk_{table} on {table}" in plan, plan


def test_recording_sends_looks_messages_up_by_key():
    _, messages = seed()
    chosen = messages[100:120]
    with plans_of("messages") as plans, db.session_scope() as s:
        mark_sent(s, [Accepted(m, 0, 0, "smtp", f"<{m}@test>", NOW) for m in chosen])
    assert len(plans) == 1
    assert_by_key(plans[0], "messages")
    with db.get_engine().connect() as conn:
        sent = conn.scalars(text("SELECT id FROM messages WHERE status = 'sent' ORDER BY id")).all()
    assert sent == chosen


def test_writing_enrollments_back_looks_them_up_by_key():
    enrollments, _ = seed()
    chosen = enrollments[:50]
    with plans_of("enrollments") as plans, db.session_scope() as s:
        update_rows(s, Enrollment.__table__, {e: {"current_step": 1} for e in chosen}, also={"updated_at": NOW})
    assert len(plans) == 1
    assert_by_key(plans[0], "enrollments")
    with db.get_engine().connect() as conn:
        moved = conn.scalars(text("SELECT id FROM enrollments WHERE current_step = 1 ORDER BY id")).all()
    assert moved == chosen


def test_the_ticks_claim_and_the_advances_owner_stamp_are_heap_only_updates():
    # No index names the columns they write, and new pages keep room (migration
    # 0039): each writes its rows in place, with no new entry in the table's indexes.
    seed()

    def written(s: Any) -> tuple[int, int]:
        """Rows of enrollments this backend updated, and of them heap-only, so far
        (its counts not yet sent to the statistics: hence differences)."""
        return tuple(s.execute(text(  # type: ignore[return-value]
            "SELECT pg_stat_get_xact_tuples_updated(CAST('enrollments' AS regclass)),"
            " pg_stat_get_xact_tuples_hot_updated(CAST('enrollments' AS regclass))")).one())

    with db.session_scope() as s:
        before = written(s)
        claimed = claim_enrollments(s, datetime.now(timezone.utc), 5).ids
        claim = written(s)
        take_claims(s, claimed, "worker-1")
        stamp = written(s)
    assert len(claimed) == 5
    assert (claim[0] - before[0], claim[1] - before[1]) == (5, 5), "the claim"
    assert (stamp[0] - claim[0], stamp[1] - claim[1]) == (5, 5), "the stamp"


def test_releasing_a_dead_workers_enrollments_finds_them_through_the_due_index():
    # claimed_by has no index (so the stamp stays heap-only): the rows a worker was
    # advancing are among the due ones, a few of the table's.
    enrollments, _ = seed()
    held = enrollments[:20]
    with db.get_engine().begin() as conn:
        conn.execute(text("UPDATE enrollments SET next_run_at = now() + interval '1 day' WHERE id > :last"),
                     {"last": enrollments[99]})
        conn.execute(text("UPDATE enrollments SET claimed_until = now() + interval '5 minutes', claimed_by = 'dead'"
                          " WHERE id = ANY(:ids)"), {"ids": held})
    with db.get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE enrollments"))
    with plans_of("enrollments") as plans, db.session_scope() as s:
        assert release_claims(s, "dead", datetime.now(timezone.utc)) == len(held)
    assert len(plans) == 1
    assert "Seq Scan on enrollments" not in plans[0], plans[0]
    assert "ix_enrollments_due" in plans[0], plans[0]
