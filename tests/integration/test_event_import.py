"""History imports end to end: posted through the API, processed by a real Celery
worker on real Redis into real PostgreSQL, polled through the jobs API; plus the
resume of a job whose worker died, the portable (SQLite) path, and proof that
imported history starts, advances and ends no sequence and sends nothing."""
from __future__ import annotations

import gc
import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, undefer

from core.gc_pacing import FIRST_THRESHOLD
from models import Enrollment, Event, Job, JobPart, Message, Subscriber, db
from models.event import IMPORTED
from tests.support import factories
from tests.support.engine import run_due
from tests.support.waiting import wait_for_job

if TYPE_CHECKING:
    from audience.event_rows import EventRow

URL = "/api/v1/events/import"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)




def waits_for_commit(holder: Session, work: Callable[[], None], what: str) -> None:
    """``work`` in a thread: still waiting 2 s later (on what ``holder`` has not
    committed), and done once ``holder`` commits."""
    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=2)
    assert thread.is_alive(), what
    holder.commit()
    holder.close()
    thread.join(timeout=60)
    assert not thread.is_alive(), f"still waiting after the commit: {what}"


def opened_by(account_id: int) -> Callable[[str, int], EventRow]:
    """A checked ``opened`` row of ``account_id`` for an address at a second of 2025-05-01."""
    from audience.event_rows import RowChecker

    checker = RowChecker(account_id, NOW)
    return lambda email, second: checker.check({"email": email, "name": "opened",
                                                "occurred_at": f"2025-05-01T00:00:{second:02d}Z"}, True)


def post_import(client, tenant, data, content_type: str = "text/csv") -> int:
    response = client.post(URL, data=data, content_type=content_type, headers=tenant.headers)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["job_id"]


def imported(account_id: int) -> list[Event]:
    with db.session_scope() as s:
        return list(s.scalars(select(Event).options(undefer(Event.message_ref))
                             .where(Event.account_id == account_id).order_by(Event.id)))


def emails(account_id: int) -> dict[int, str]:
    with db.session_scope() as s:
        return dict(s.execute(select(Subscriber.id, Subscriber.email).where(Subscriber.account_id == account_id)).all())


CSV = '''Email,Name,Occurred_At,message_ref,value,properties
ada@example.com,sent,2025-11-01T09:00:00Z,<m1@old>,,
ADA@Example.com,opened,2025-11-01T10:15:00+01:00,m1@old,,"{""ua"": ""phone""}"
bob@example.com,purchase,2025-11-02T12:00:00-05:00,,49.5,"{""order"": 7}"
not-an-address,opened,2025-11-01T09:00:00Z,,,
cy@example.com,clicked,2025-11-01 09:00:00,,,
cy@example.com,purchase,2025-11-01T09:00:00Z,,lots,
cy@example.com,purchase,2025-11-01T09:00:00Z,,,[1]
cy@example.com,queued,2025-11-01T09:00:00Z,,,
cy@example.com,has space,2025-11-01T09:00:00Z,,,
cy@example.com,signup,2099-01-01T00:00:00Z,,,
'''


def test_it_imports_a_csv_history_counting_each_row_and_reporting_bad_ones_by_field(client, alice, worker):
    factories.subscribers(alice.account_id, 1, prefix="ada")  # ada0@example.test: unrelated, untouched
    job = wait_for_job(client, alice, post_import(client, alice, CSV))
    assert job["status"] == "completed", job
    assert job["kind"] == "event_import"
    assert (job["total"], job["processed"], job["created"], job["error_count"]) == (10, 10, 3, 7)
    assert job["result"] == {"events": 3, "duplicates": 0, "subscribers_created": 2}
    assert job["errors"] == [
        "row 5: email: Not a valid email address: An email address must have an @-sign.",
        "row 6: occurred_at: Needs a UTC offset (e.g. 2026-01-31T09:00:00Z or +02:00).",
        "row 7: value: Not a valid number.",
        "row 8: properties: Must be a JSON object.",
        "row 9: name: 'queued' describes the platform's own sending and cannot be imported.",
        "row 10: name: Use 1-100 letters, digits, '_', '.', ':' or '-'.",
        "row 11: occurred_at: Is in the future; an import is history.",
    ]
    events = imported(alice.account_id)
    people = emails(alice.account_id)
    got = [(people[e.subscriber_id], e.name, e.occurred_at, e.message_ref, e.value, e.properties, e.source,
            e.message_id) for e in events]
    assert got == [
        ("ada@example.com", "sent", datetime(2025, 11, 1, 9, tzinfo=timezone.utc), "m1@old", None, {}, IMPORTED, None),
        ("ada@example.com", "opened", datetime(2025, 11, 1, 9, 15, tzinfo=timezone.utc), "m1@old", None,
         {"ua": "phone"}, IMPORTED, None),
        ("bob@example.com", "purchase", datetime(2025, 11, 2, 17, tzinfo=timezone.utc), None, 49.5, {"order": 7},
         IMPORTED, None),
    ]
    assert sorted(people.values()) == ["ada0@example.test", "ada@example.com", "bob@example.com"]
    with db.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(JobPart)) == 0, "the upload is dropped once done"
        assert set(s.scalars(select(Subscriber.status).where(Subscriber.account_id == alice.account_id))) == {"active"}


def test_an_upload_cut_into_many_parts_is_stored_and_read_back_byte_for_byte(client, alice, worker, monkeypatch):
    """Parts of 7 bytes cut through lines and multi-byte characters; on PostgreSQL
    they are written by binary COPY (audience.event_import._store_part)."""
    from audience import event_import
    from web.events import routes

    monkeypatch.setattr(event_import, "PART_BYTES", 7)
    monkeypatch.setattr(routes, "BLOCK", 7)
    body = ("email,name,occurred_at,properties\n"
            'zoë@example.com,opened,2025-11-01T09:00:00Z,"{""city"": ""Zürich 🏔""}"\n'
            "ünï@example.com,clicked,2025-11-01T09:05:00Z,\n").encode()
    job_id = post_import(client, alice, body)
    with db.session_scope() as s:
        parts = s.execute(select(JobPart.part, JobPart.data).where(JobPart.job_id == job_id)
                          .order_by(JobPart.part)).all()
    assert [p for p, _ in parts] == list(range(len(body) // 7 + 1))
    assert b"".join(bytes(d) for _, d in parts) == body
    job = wait_for_job(client, alice, job_id)
    assert (job["status"], job["created"], job["error_count"]) == ("completed", 2, 0), job
    people = emails(alice.account_id)
    assert [(people[e.subscriber_id], e.name, e.properties) for e in imported(alice.account_id)] == [
        ("zoë@example.com", "opened", {"city": "Zürich 🏔"}), ("ünï@example.com", "clicked", {})]


def test_it_imports_json_lines_and_reports_lines_that_are_not_events(client, alice, worker):
    lines = [
        {"email": "dee@example.com", "name": "delivered", "occurred_at": "2025-10-01T08:00:00+00:00",
         "message_ref": "x1"},
        "not json at all",
        ["a", "list"],
        {"email": "dee@example.com", "name": "renewal", "occurred_at": "2025-10-02T08:00:00Z", "value": 12,
         "properties": {"plan": "pro"}},
        {"email": "dee@example.com", "name": "renewal", "occurred_at": "2025-10-03T08:00:00Z", "colour": "red"},
        {"email": "dee@example.com", "name": "renewal", "occurred_at": "2025-10-03T08:00:00Z", "value": True},
        {"email": "dee@example.com", "name": "x" * 101, "occurred_at": "2025-10-03T08:00:00Z"},
        {"email": "dee@example.com", "name": ["renewal"], "occurred_at": "2025-10-03T08:00:00Z"},
        {"email": ["dee@example.com"], "name": "renewal", "occurred_at": 20251003},
    ]
    body = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n\n"
    job = wait_for_job(client, alice, post_import(client, alice, body, "application/x-ndjson"))
    assert job["status"] == "completed", job
    assert (job["processed"], job["created"], job["error_count"]) == (9, 2, 7)
    assert job["errors"] == ["row 2: Not a valid JSON line.", "row 3: Must be a JSON object.",
                             "row 5: colour: Unknown field.", "row 6: value: Not a valid number.",
                             "row 7: name: Use 1-100 letters, digits, '_', '.', ':' or '-'.",
                             "row 8: name: Not a valid string.", "row 9: email: Not a valid string."]
    assert [(e.name, e.value, e.properties, e.message_ref) for e in imported(alice.account_id)] == [
        ("delivered", None, {}, "x1"), ("renewal", 12.0, {"plan": "pro"}, None)]


def test_importing_the_same_history_twice_adds_nothing_the_second_time(client, alice, worker):
    rows = "".join(f"user{i % 50}@example.com,opened,2025-09-01T00:00:{i % 60:02d}Z,m{i},,\n" for i in range(300))
    body = "email,name,occurred_at,message_ref,value,properties\n" + rows
    first = wait_for_job(client, alice, post_import(client, alice, body))
    assert (first["created"], first["result"]) == (300, {"events": 300, "duplicates": 0, "subscribers_created": 50})
    second = wait_for_job(client, alice, post_import(client, alice, body))
    assert (second["status"], second["created"], second["result"]) == (
        "completed", 0, {"events": 0, "duplicates": 300, "subscribers_created": 0})
    assert len(imported(alice.account_id)) == 300


def test_one_accounts_import_touches_nothing_of_another_account(client, alice, bob, worker):
    bobs = factories.subscribers(bob.account_id, 1, prefix="shared")  # shared0@example.test, also in Alice's file
    body = "email,name,occurred_at\nshared0@example.test,purchase,2025-09-01T00:00:00Z\n"
    job_id = post_import(client, alice, body)
    assert wait_for_job(client, alice, job_id)["created"] == 1
    assert client.get(f"/api/v1/jobs/{job_id}", headers=bob.headers).status_code == 404
    assert imported(bob.account_id) == []
    assert list(emails(bob.account_id)) == bobs
    (event,) = imported(alice.account_id)
    assert event.subscriber_id not in bobs and emails(alice.account_id)[event.subscriber_id] == "shared0@example.test"
    # The same file in Bob's account is Bob's own event, not a duplicate of Alice's.
    assert wait_for_job(client, bob, post_import(client, bob, body))["created"] == 1
    assert [e.subscriber_id for e in imported(bob.account_id)] == bobs


def test_imported_history_starts_advances_and_ends_no_sequence_and_sends_nothing(client, alice, worker):
    account = alice.account_id
    # Started by a purchase or by a new subscriber; and one already running, waiting
    # on a "purchase" condition and ended by a "purchase" exit event.
    factories.sequence(account, [{"type": "email", "subject": "thanks", "text": "t"}],
                       settings={"trigger": {"type": "event", "event": "purchase"}})
    factories.sequence(account, [{"type": "email", "subject": "welcome", "text": "w"}],
                       settings={"trigger": {"type": "subscriber_created"}})
    waiting = factories.sequence(account, [
        {"type": "delay", "seconds": 3600},
        {"type": "condition", "condition": {"type": "event", "name": "purchase"}, "else_goto": "exit"},
        {"type": "email", "subject": "buyer", "text": "b"},
    ], settings={"exit_events": ["purchase"]})
    enrolled_at = datetime.now(timezone.utc) - timedelta(days=1)
    (sid,) = factories.subscribers(account, 1, prefix="runner")
    (enrollment_id,) = factories.enroll(account, waiting, [sid], enrolled_at)
    run_due(enrolled_at)  # walks into the one-hour delay
    since = (enrolled_at + timedelta(minutes=5)).isoformat()
    body = ("email,name,occurred_at,value\n"
            f"runner0@example.test,purchase,{since},10\n"
            f"newcomer@example.com,purchase,{since},20\n"
            f"newcomer@example.com,opened,{since},\n")
    job = wait_for_job(client, alice, post_import(client, alice, body))
    assert (job["created"], job["result"]["subscribers_created"]) == (3, 1)
    run_due(datetime.now(timezone.utc))  # the delay is over: the condition asks, the exit goal is checked
    with db.session_scope() as s:
        rows = s.execute(select(Enrollment.id, Enrollment.status, Enrollment.exit_reason)
                         .where(Enrollment.account_id == account)).all()
        assert [tuple(r) for r in rows] == [(enrollment_id, "exited", "branch_exit")], \
            "no enrollment was started; the imported purchase neither ended it as a goal nor met the condition (else: exit)"
        assert s.scalar(select(func.count()).select_from(Message)) == 0, "nothing was sent"


def test_an_import_whose_worker_died_is_resumed_after_its_last_chunk(client, alice, worker):
    """A dead worker's lease lapses; the tick's sweep puts the job back to pending and
    the task finishes it from the last committed chunk, with exact counts."""
    from audience import event_import
    from audience.imports import claim_import, imports_to_resume
    from tasks.audience import import_events

    rows = event_import.CHUNK * 2 + 10
    body = "email,name,occurred_at\n" + "".join(f"r{i % 1000}@example.com,opened,2025-08-01T00:00:00.{i:06d}Z\n"
                                                  for i in range(rows))
    with db.session_scope() as s:
        job_id = event_import.create_event_import_job(s, alice.account_id, [body.encode()], "csv", NOW).id
    lease = timedelta(seconds=30)
    with db.session_scope() as s:
        assert claim_import(s, job_id, NOW, lease, kind=event_import.KIND)
    thresholds = gc.get_threshold()
    with db.session_scope() as s:
        steps = event_import.run_event_import(s, job_id, lambda: NOW, lease)
        next(steps)  # one chunk committed, then the worker dies
        assert gc.get_threshold()[0] == max(FIRST_THRESHOLD, thresholds[0]), "the job runs with fewer collections"
        s.commit()
        steps.close()
    assert gc.get_threshold() == thresholds, "and puts the collector back as it found it"
    with db.session_scope() as s:
        assert imports_to_resume(s, NOW + timedelta(seconds=10), kind=event_import.KIND) == [], "the lease holds"
        assert imports_to_resume(s, NOW + timedelta(seconds=31), kind=event_import.KIND) == [job_id]
    import_events.delay(job_id)
    job = wait_for_job(client, alice, job_id)
    assert (job["status"], job["processed"], job["created"], job["result"]["duplicates"]) == ("completed", rows,
                                                                                             rows, 0)
    assert len(imported(alice.account_id)) == rows


def test_on_sqlite_the_portable_path_imports_and_deduplicates(tmp_path: Path):
    """The embedded default runs the same import without COPY."""
    from sqlalchemy.orm import sessionmaker

    from accounts.keys import create_account
    from audience.event_import import create_event_import_job, run_event_import
    from tests.support.database import sqlite_engine

    body = (b"email,name,occurred_at,value,properties\n"
            b"a@example.com,opened,2025-01-01T00:00:00Z,,\n"
            b"A@example.com,purchase,2025-01-02T00:00:00Z,5,\"{\"\"k\"\": 1}\"\n"
            b"a@example.com,opened,2025-01-01T00:00:00Z,,\n"
            b"bad,opened,2025-01-01T00:00:00Z,,\n")
    with sqlite_engine(tmp_path) as engine:
        with sessionmaker(bind=engine, expire_on_commit=False)() as s:
            account_id = create_account(s, "Solo", "solo@example.com", "Solo")[0].id
            counts = []
            for _ in range(2):
                job = create_event_import_job(s, account_id, [body[:30], body[30:]], "csv", NOW)
                job.status = "running"
                s.commit()
                for job in run_event_import(s, job.id, lambda: NOW):
                    s.commit()
                counts.append((job.processed, job.created_count, job.error_count, job.result))
            assert counts == [(4, 2, 1, {"events": 2, "duplicates": 1, "subscribers_created": 1}),
                              (4, 0, 1, {"events": 0, "duplicates": 3, "subscribers_created": 0})]
            events = list(s.scalars(select(Event).order_by(Event.id)))
            assert [(e.name, e.value, e.properties, e.source) for e in events] == [
                ("opened", None, {}, IMPORTED), ("purchase", 5.0, {"k": 1}, IMPORTED)]
            assert s.scalar(select(func.count()).select_from(JobPart)) == 0
            assert [j.status for j in s.scalars(select(Job))] == ["completed", "completed"]


def test_imported_conversions_count_where_the_goal_logic_sees_them_and_imported_opens_in_no_sequence(
        client, alice, worker, smtp):
    from tests.support.sending import STEP, send_in_process

    t0 = datetime.now(timezone.utc) - timedelta(days=10)
    account = alice.account_id
    sequence = factories.sequence(account, [STEP], settings={"goal": {"event": "purchase", "within_days": 7}})
    people = factories.subscribers(account, 2, prefix="buyer")
    factories.enroll(account, sequence, people, t0)
    send_in_process(run_due(t0), at=t0)
    hour = (t0 + timedelta(hours=1)).isoformat()
    body = ("email,name,occurred_at,message_ref,value\n"
            f"buyer0@example.test,purchase,{hour},,20\n"  # after our email, within the goal's window
            f"buyer1@example.test,opened,{hour},old-1,\n"  # the other platform's email, not ours
            f"buyer1@example.test,clicked,{hour},old-1,\n"
            f"stranger@example.com,purchase,{hour},,99\n")  # no email of ours before it
    assert wait_for_job(client, alice, post_import(client, alice, body))["created"] == 4
    (row,) = client.get(f"/api/v1/email-sequences/{sequence}/analytics", headers=alice.headers).get_json()["steps"]
    assert (row["sent"], row["opened"], row["clicked"]) == (2, 0, 0)
    assert (row["converted"], row["conversions"], row["revenue"]) == (1, 1, 20.0)
    totals = client.get("/api/v1/analytics/attribution", headers=alice.headers).get_json()["totals"]
    assert (totals["conversions"], totals["revenue"]) == (2, 119.0)
    assert (totals["unattributed_conversions"], totals["unattributed_revenue"]) == (1, 99.0)


def test_two_imports_of_one_event_at_the_same_moment_write_it_once_and_count_it_once(alice):
    """The second writer waits for the first (on the account's import lock where the
    chunks skip the row checks, as here; on the uncommitted key where they run them),
    then skips the key the first wrote: nothing lost or doubled."""
    from audience.event_rows import RowChecker
    from audience.event_writer import write_events

    checker = RowChecker(alice.account_id, NOW)
    rows = [checker.check({"email": f"race{i}@example.com", "name": "opened",
                           "occurred_at": f"2025-05-01T00:00:0{i}Z"}, True) for i in range(5)]
    with db.session_scope() as s:
        s.add(Subscriber(account_id=alice.account_id, email="race2@example.com"))
    first = db.new_session()
    assert write_events(first, alice.account_id, rows[2:3], NOW) == (1, 0)  # holds race2's key, uncommitted
    outcome: list[tuple[int, int]] = []

    def second_import() -> None:
        with db.session_scope() as s:
            outcome.append(write_events(s, alice.account_id, rows, NOW))

    waits_for_commit(first, second_import, "the second import waits on the first one's key")
    assert outcome == [(4, 4)], "four new events and subscribers; the raced event is a duplicate"
    with db.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 5
        assert s.scalar(select(func.count()).select_from(Subscriber)) == 5


def test_an_address_being_added_meanwhile_is_waited_for_and_then_used_not_added_twice(alice):
    """Only addresses the account does not know are inserted; one another
    transaction inserted first (uncommitted: a subscriber created through the API)
    is skipped by ON CONFLICT once that commits, then looked up
    (event_writer._RESOLVE, again): its events go to that subscriber."""
    from audience.event_writer import write_events

    row = opened_by(alice.account_id)
    factories.subscribers(alice.account_id, 1, prefix="known")  # known0@example.test
    first = db.new_session()
    first.add(Subscriber(account_id=alice.account_id, email="late@example.com"))
    first.flush()  # uncommitted
    outcome: list[tuple[int, int]] = []

    def the_import() -> None:
        with db.session_scope() as s:
            outcome.append(write_events(s, alice.account_id, [row("late@example.com", 2), row("known0@example.test", 3),
                                                              row("fresh@example.com", 4)], NOW))

    waits_for_commit(first, the_import, "the import waits on the other transaction's new subscriber")
    assert outcome == [(3, 1)], "three events; only fresh@ was added by the import"
    people = emails(alice.account_id)
    assert sorted(people.values()) == ["fresh@example.com", "known0@example.test", "late@example.com"]
    assert [(people[e.subscriber_id], e.occurred_at.second) for e in imported(alice.account_id)] == [
        ("late@example.com", 2), ("known0@example.test", 3), ("fresh@example.com", 4)]


def test_the_same_event_twice_in_one_chunk_is_written_once_and_the_rest_of_the_chunk_with_it(alice):
    """The plain insert is refused by the unique index (the first copy is not there
    before the statement); the chunk is written again skipping the repeat."""
    from audience.event_rows import RowChecker
    from audience.event_writer import write_events

    checker = RowChecker(alice.account_id, NOW)
    once = {"email": "twice@example.com", "name": "opened", "occurred_at": "2025-05-01T00:00:00Z"}
    other = {"email": "other@example.com", "name": "clicked", "occurred_at": "2025-05-01T00:00:01Z"}
    rows = [checker.check(item, True) for item in (once, other, once)]
    with db.session_scope() as s:
        assert write_events(s, alice.account_id, rows, NOW) == (2, 2)
    assert sorted(e.name for e in imported(alice.account_id)) == ["clicked", "opened"]


def test_text_that_copy_must_escape_is_stored_as_it_was_checked(alice):
    """The rows' COPY text is made by the checker: tabs, newlines and backslashes in a
    reference or in properties reach PostgreSQL intact, and NULLs stay NULL."""
    from audience.event_rows import RowChecker
    from audience.event_writer import write_events

    checker = RowChecker(alice.account_id, NOW)
    odd = checker.check({"email": "esc@example.com", "name": "opened", "occurred_at": "2025-05-01T00:00:00Z",
                         "message_ref": "a\tb\\c\rd", "properties": '{"k": "x\\\\y\\tz\\n", "t\\\\": 1}'}, True)
    bare = checker.check({"email": "esc@example.com", "name": "purchase", "occurred_at": "2025-05-01T00:00:01Z",
                          "value": "-0.5"}, True)
    with db.session_scope() as s:
        assert write_events(s, alice.account_id, [odd, bare], NOW) == (2, 1)
    stored = imported(alice.account_id)
    assert [(e.name, e.message_ref, e.properties, e.value, e.dedup_key) for e in stored] == [
        ("opened", "a\tb\\c\rd", {"k": "x\\y\tz\n", "t\\": 1}, None, odd.dedup_key),
        ("purchase", None, {}, -0.5, bare.dedup_key)]



def test_an_erasure_during_a_chunk_waits_for_it_then_removes_its_events_too(alice):
    """The chunk skips the per-row foreign-key checks (this suite connects as a
    superuser) and locks, once, the account and the account's import lock, which
    every deletion of a subscriber waits for (a trigger, migration 0038), not each
    subscriber: deleting one it names waits for the chunk's commit, and its cascade
    then takes the chunk's events, so no event is left pointing at a subscriber
    that is gone."""
    from audience.event_rows import RowChecker
    from audience.event_writer import may_skip_row_checks, write_events

    with db.session_scope() as s:
        known = Subscriber(account_id=alice.account_id, email="known@example.com")
        s.add(known)
        s.flush()
        known_id = known.id
        assert may_skip_row_checks(s)
    checker = RowChecker(alice.account_id, NOW)
    rows = [checker.check({"email": email, "name": "opened", "occurred_at": "2025-05-01T00:00:00Z"}, True)
            for email in ("known@example.com", "new@example.com")]
    chunk = db.new_session()
    assert write_events(chunk, alice.account_id, rows, NOW) == (2, 1)  # uncommitted
    with db.session_scope() as s, pytest.raises(OperationalError, match="could not obtain lock"):
        s.execute(text("SELECT 1 FROM accounts WHERE id = :id FOR UPDATE NOWAIT"), {"id": alice.account_id})
    with db.session_scope() as s:
        assert s.execute(text("SELECT 1 FROM subscribers WHERE id = :id FOR UPDATE NOWAIT"), {"id": known_id}).all(), \
            "the subscribers it names are not locked one by one"

    def erase() -> None:
        with db.session_scope() as s:
            s.execute(delete(Subscriber).where(Subscriber.id == known_id))

    waits_for_commit(chunk, erase, "the deletion waits for the chunk that names the subscriber")
    with db.session_scope() as s:
        left = s.execute(select(Event.subscriber_id, Subscriber.email).join(
            Subscriber, Subscriber.id == Event.subscriber_id, isouter=True)).all()
    assert [email for _, email in left] == ["new@example.com"], "the erased subscriber's event went with it"


def test_ids_a_job_kept_are_used_by_its_next_chunks_until_a_subscriber_is_deleted(alice):
    """A job keeps the ids its committed chunks resolved (KnownAddresses) and its next
    chunks use them; a deletion of a subscriber in between makes the next chunk look
    every address up again, so none of its events points at the deleted one."""
    from audience.event_writer import KnownAddresses, write_events

    row = opened_by(alice.account_id)
    known = KnownAddresses()
    with db.session_scope() as s:
        assert write_events(s, alice.account_id, [row("a@example.com", 1), row("b@example.com", 2)], NOW,
                            known) == (2, 2)
    assert known.ids == {}, "kept only once the chunk commits"
    known.committed()
    first_ids = dict(known.ids)
    assert sorted(first_ids) == ["a@example.com", "b@example.com"]
    with db.session_scope() as s:
        assert write_events(s, alice.account_id, [row("a@example.com", 3), row("b@example.com", 4)], NOW,
                            known) == (2, 0)
    known.committed()
    with db.session_scope() as s:
        s.execute(delete(Subscriber).where(Subscriber.id == first_ids["a@example.com"]))
    with db.session_scope() as s:
        assert write_events(s, alice.account_id, [row("a@example.com", 5), row("b@example.com", 6)], NOW,
                            known) == (2, 1)
    known.committed()
    people = emails(alice.account_id)
    assert people[first_ids["b@example.com"]] == "b@example.com"
    assert first_ids["a@example.com"] not in people, "a@ was deleted, and its events with it"
    assert [(people.get(e.subscriber_id), e.occurred_at.second) for e in imported(alice.account_id)] == [
        ("b@example.com", 2), ("b@example.com", 4), ("a@example.com", 5), ("b@example.com", 6)]
    assert known.ids["a@example.com"] != first_ids["a@example.com"], "the new a@'s id is kept"


def test_a_changed_address_between_chunks_is_looked_up_again_not_taken_from_the_kept_ids(alice):
    """A subscriber's new address (through the API) advances the same counter as a
    deletion: the job's next chunk looks the old address up again rather than giving
    its rows to the subscriber that no longer has it."""
    from audience.event_writer import KnownAddresses, write_events
    from audience.subscribers import update_subscriber

    row = opened_by(alice.account_id)
    known = KnownAddresses()
    with db.session_scope() as s:
        assert write_events(s, alice.account_id, [row("old@example.com", 1), row("old@example.com", 2)], NOW,
                            known) == (2, 1)
    known.committed()
    moved = known.ids["old@example.com"]
    with db.session_scope() as s:
        update_subscriber(s, alice.account_id, moved, {"email": "new@example.com"}, NOW)
    with db.session_scope() as s:
        assert write_events(s, alice.account_id, [row("old@example.com", 3), row("old@example.com", 4)], NOW,
                            known) == (2, 1), "old@ is a new subscriber now"
    people = emails(alice.account_id)
    assert [(people[e.subscriber_id], e.occurred_at.second) for e in imported(alice.account_id)] == [
        ("new@example.com", 1), ("new@example.com", 2), ("old@example.com", 3), ("old@example.com", 4)]


def test_deletions_of_subscribers_of_one_account_do_not_wait_for_one_another(alice):
    """They take the account's import lock shared (only an import chunk takes it
    exclusively), so two erasures at once never wait on, nor deadlock with, each other."""
    factories.subscribers(alice.account_id, 2, prefix="gone")
    first = db.new_session()
    first.execute(delete(Subscriber).where(Subscriber.email == "gone0@example.test"))
    try:
        with db.session_scope() as s:
            s.execute(text("SET LOCAL lock_timeout = '5s'"))
            assert s.execute(delete(Subscriber).where(Subscriber.email == "gone1@example.test")).rowcount == 1
    finally:
        first.commit()
        first.close()
    assert emails(alice.account_id) == {}


def test_a_role_that_may_not_skip_the_row_checks_imports_the_same_with_them(alice):
    """An operator's database role without the right to set session_replication_role
    gets the per-row foreign-key checks, and the same result; granted the right
    (PostgreSQL 15+), it skips them."""
    from sqlalchemy import create_engine

    from audience.event_rows import RowChecker
    from audience.event_writer import may_skip_row_checks, write_events
    from tests.conftest import RUN_ID

    role = f"eseq_importer_{RUN_ID}"
    with db.session_scope() as s:
        s.execute(text(f"CREATE ROLE {role} LOGIN"))
        s.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
        s.execute(text(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}"))
        s.execute(text(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}"))
    engine = create_engine(db.get_engine().url.set(username=role))
    try:
        checker = RowChecker(alice.account_id, NOW)
        rows = [checker.check({"email": f"plain{i}@example.com", "name": "clicked",
                               "occurred_at": f"2025-06-01T00:00:0{i}Z"}, True) for i in range(3)]
        with Session(engine) as s, s.begin():
            assert not may_skip_row_checks(s)
            assert write_events(s, alice.account_id, rows, NOW) == (3, 3)
        with Session(engine) as s, s.begin():
            assert write_events(s, alice.account_id, rows, NOW) == (0, 0), "a repeat is skipped all the same"
            with db.session_scope() as other, pytest.raises(OperationalError, match="could not obtain lock"):
                other.execute(text("SELECT 1 FROM subscribers WHERE email = 'plain0@example.com'"
                                   " FOR UPDATE NOWAIT"))  # as its checks would lock it: a deletion waits
        with db.session_scope() as s:
            s.execute(text(f"GRANT SET ON PARAMETER session_replication_role TO {role}"))
        with Session(engine) as s:
            assert may_skip_row_checks(s)
        assert [e.name for e in imported(alice.account_id)] == ["clicked"] * 3
    finally:
        engine.dispose()
        with db.session_scope() as s:
            s.execute(text(f"DROP OWNED BY {role}"))
            s.execute(text(f"DROP ROLE {role}"))
