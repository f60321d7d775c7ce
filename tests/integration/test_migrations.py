"""Migrations build the schema the models describe, and come back down, on both
backends the platform runs on."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import BigInteger, Integer, Table, insert, inspect, select, text

from models import Base, db
from models.event import is_event_partition
from tests.support.database import embedded_sqlite, engine_at, fresh_database, migrate
from tests.support.sending import forget_smtp, send_in_process, use_smtp
from tests.support.smtp import SmtpServer


def _assert_matches_models(url: str) -> None:
    with engine_at(url) as engine:
        with engine.connect() as conn:
            # Events' monthly partitions are the database's, not the models' (migration 0034).
            context = MigrationContext.configure(conn, opts={"include_name": include_name})
            diff = compare_metadata(context, Base.metadata)
            assert diff == [], f"migrations and models differ: {diff}"


def include_name(name: str | None, type_: str, _parents: dict[str, object]) -> bool:
    return not (type_ == "table" and is_event_partition(name))


def _integer_key(table: Table) -> bool:
    return [type(c.type) for c in table.primary_key.columns] in ([Integer], [BigInteger])


def _tables(url: str) -> set[str]:
    with engine_at(url) as engine:
        return set(inspect(engine).get_table_names())


def test_postgresql_upgrades_from_empty_to_the_models_and_downgrades_back():
    with fresh_database(f"eseq_mig_{secrets.token_hex(4)}") as url:
        _assert_matches_models(url)
        migrate(url, "base", "downgrade")
        assert _tables(url) == {"alembic_version"}
        migrate(url)
        _assert_matches_models(url)


def test_sqlite_upgrades_from_empty_to_the_models_and_downgrades_back(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'eseq.sqlite'}"
    migrate(url)
    _assert_matches_models(url)
    assert set(Base.metadata.tables) <= _tables(url)
    migrate(url, "base", "downgrade")
    assert _tables(url) == {"alembic_version"}


def test_the_engine_claims_and_advances_on_the_embedded_sqlite_default(tmp_path: Path):
    """The same timer code on SQLite: claim leases, the outbox key holds, waits resume."""
    from tests.support import factories

    with embedded_sqlite(tmp_path):
        from models import Event, Message
        from sequencing.claims import claim_due_enrollments
        from sequencing.engine import advance_enrollments

        t0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
        acct = factories.account()
        seq = factories.sequence(acct, [{"type": "email", "subject": "a", "text": "x"}, {"type": "delay", "seconds": 60},
                                        {"type": "email", "subject": "b", "text": "x"}])
        factories.enroll(acct, seq, factories.subscribers(acct, 5), t0)
        for now in (t0, t0 + timedelta(seconds=30), t0 + timedelta(seconds=60)):
            with db.session_scope() as s:
                ids = claim_due_enrollments(s, now, 100)
                assert claim_due_enrollments(s, now, 100) == [], "a claimed row is leased"
            with db.session_scope() as s:
                advance_enrollments(s, ids, now)
        with db.session_scope() as s:
            assert sorted(m.subject for m in s.query(Message)) == ["a"] * 5 + ["b"] * 5
            queued = [m.id for m in s.query(Message).order_by(Message.id)]
        # The send path's bulk writes (group commit, the recordset UPDATE's SQLite form) on the same file.
        with SmtpServer() as smtp:
            use_smtp(smtp.port)
            try:
                assert send_in_process(queued, t0 + timedelta(seconds=61)) == {"sent": 10}
            finally:
                forget_smtp()
            assert len(smtp.handler.received) == 10
        with db.session_scope() as s:
            assert {m.status for m in s.query(Message)} == {"sent"}
            assert s.query(Event).filter(Event.name == "sent").count() == 10
        # A second run finds nothing to claim: recorded rows are not sendable again.
        assert send_in_process(queued, t0 + timedelta(seconds=62)) == {}


def _sqlite_counts(url: str) -> dict[str, int]:
    with engine_at(url) as engine:
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())  # at an older revision, later tables are not there yet
            return {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() for t in Base.metadata.tables
                    if t in present}


def test_sqlite_tables_are_rebuilt_with_autoincrement_keeping_every_row_and_reference(tmp_path: Path):
    """Migration 0013 on a database in use: the rebuild of a parent table must not
    cascade into its children (events keep their message, messages their subscriber)."""
    from tests.support import factories

    with embedded_sqlite(tmp_path, "0012") as url:
        from models import Event, Message, Step

        t0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
        acct = factories.account_row(t0)  # as of 0012: later revisions add columns
        seq = factories.sequence(acct, [{"type": "email", "subject": "a", "text": "x"}])
        # The engine reads columns later revisions add (enrollments.held_out): the
        # outbox rows it would queue are written as of 0012 instead.
        people = factories.subscribers(acct, 3)
        enrollments = factories.enrollment_rows(acct, seq, people, t0)
        with db.session_scope() as s:
            step = s.scalar(select(Step.id).where(Step.sequence_id == seq))
            # Through the table with only the columns named (and their Python defaults):
            # the ORM's insert would name every column of head's model.
            queued = [s.execute(insert(Message.__table__).values(
                account_id=acct, subscriber_id=sub, sequence_id=seq, enrollment_id=e, step_id=step,
                idempotency_key=f"{e}:{step}::0", to_email=f"user{n}@example.test", created_at=t0,
            )).inserted_primary_key[0] for n, (sub, e) in enumerate(zip(people, enrollments))]
        with db.session_scope() as s:
            s.add_all([Event(account_id=acct, subscriber_id=sub, message_id=m,
                             name="opened", occurred_at=t0, created_at=t0, source="tracking")
                       for sub, m in zip(people, queued)])
            # Written as of 0012 (0032 adds email_hash to the model): a plain insert.
            s.execute(text("INSERT INTO suppressions (account_id, email, reason, created_at)"
                           " VALUES (:a, 'gone@example.test', 'manual', :t)"),
                      {"a": acct, "t": t0.strftime("%Y-%m-%d %H:%M:%S.%f")})
        before = _sqlite_counts(url)
        assert before["messages"] == 3 and before["events"] >= 3
        migrate(url)
        db.configure(url)
        assert {t: n for t, n in _sqlite_counts(url).items() if t in before} == before
        with db.session_scope() as s:
            linked = {e.message_id for e in s.query(Event).filter(Event.name == "opened")}
            assert linked == set(queued)
            newest = max(queued)
            s.delete(s.get(Message, newest))
        [another] = factories.subscribers(acct, 1, prefix="later")
        with db.session_scope() as s:
            message = Message(account_id=acct, subscriber_id=another, idempotency_key="later:1", to_email="x@y.test")
            s.add(message)
            s.flush()
            assert message.id > newest, "the deleted message's id was handed out again"
        with engine_at(url) as engine:
            with engine.connect() as conn:
                tables = dict(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all())
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        # event_keys is keyed by the text of its keys: no id to hand out again.
        assert [t for t, table in Base.metadata.tables.items()
                if "AUTOINCREMENT" not in tables[t] and _integer_key(table)] == []
        _assert_matches_models(url)
        migrate(url, "0012", "downgrade")
        assert _sqlite_counts(url)["events"] == before["events"]


def test_every_table_is_declared_with_ids_never_reused():
    assert [t.name for t in Base.metadata.sorted_tables if not t.dialect_options["sqlite"]["autoincrement"]] == []


def _older_spellings(url: str) -> None:
    """Rows as POST /events and unsubscribing stored them before one normaliser."""
    with engine_at(url) as engine:
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO accounts (id, name, from_email, created_at) VALUES (7, 'A', 'a@a.test', '2026-01-01')")
            for email in ("ada@xn--bcher-kva.de", "bob@xn--bcher-kva.de", "bob@bücher.de", "cy@example.test"):
                conn.exec_driver_sql("INSERT INTO subscribers (account_id, email, status, attributes, tags, created_at, "
                                     "updated_at) VALUES (7, %s, 'active', '{}', '[]', '2026-01-01', '2026-01-01')"
                                     .replace("%s", "?" if url.startswith("sqlite") else "%s"), (email,))
            for email in ("ada@xn--bcher-kva.de", "dee@xn--bcher-kva.de", "dee@bücher.de"):
                conn.exec_driver_sql("INSERT INTO suppressions (account_id, email, reason, created_at) "
                                     "VALUES (7, %s, 'unsubscribed', '2026-01-01')"
                                     .replace("%s", "?" if url.startswith("sqlite") else "%s"), (email,))


def _stored(url: str) -> tuple[list[str], list[str]]:
    with engine_at(url) as engine:
        with engine.connect() as conn:
            return (sorted(conn.exec_driver_sql("SELECT email FROM subscribers").scalars()),
                    sorted(conn.exec_driver_sql("SELECT email FROM suppressions").scalars()))


NORMALISED = (["ada@bücher.de", "bob@bücher.de", "bob@xn--bcher-kva.de", "cy@example.test"],
              ["ada@bücher.de", "dee@bücher.de"])


def test_addresses_stored_in_older_spellings_are_normalised_on_postgresql():
    with fresh_database(f"eseq_mig_{secrets.token_hex(4)}") as url:
        migrate(url, "0012", "downgrade")
        _older_spellings(url)
        migrate(url)
        assert _stored(url) == NORMALISED


def test_addresses_stored_in_older_spellings_are_normalised_on_sqlite(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'eseq.sqlite'}"
    migrate(url, "0012")
    _older_spellings(url)
    migrate(url)
    assert _stored(url) == NORMALISED
    migrate(url, "0012", "downgrade")
    assert _stored(url) == NORMALISED
