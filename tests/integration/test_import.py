"""Imports end to end: posted through the API, processed by a real Celery worker on
real Redis into real PostgreSQL, polled through the jobs API. Plus the portable
(SQLite) upsert path and the claim that keeps a redelivered task from running twice."""
from __future__ import annotations

import io
import json
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select

from models import Subscriber, db
from tests.support.waiting import wait_for_job

URL = "/api/v1/subscribers"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)




def post_import(client, tenant, data, content_type: str) -> int:
    response = client.post(f"{URL}/import", data=data, content_type=content_type, headers=tenant.headers)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["job_id"]


def stored(account_id: int) -> dict[str, Subscriber]:
    with db.session_scope() as s:
        return {r.email: r for r in s.scalars(select(Subscriber).where(Subscriber.account_id == account_id))}


CSV = '''Email,First_Name,last_name,timezone,tags,plan,city
ada@example.com,Ada,Lovelace,Europe/London,vip;news|beta,pro,London
BOB@Example.com,Bob,,America/New_York,,free,
not-an-address,Nobody,,,,,
cy@example.com,Cy,,Mars/Base,,,
"dee@example.com","Dee, the ""quoted""",,,news,,"Paris"
ada@example.com,,,,early,,
'''


def test_it_imports_a_csv_and_reports_errors_by_row(client, alice, worker):
    job = wait_for_job(client, alice, post_import(client, alice, CSV, "text/csv"))
    assert job["status"] == "completed", job
    assert (job["total"], job["processed"], job["created"], job["updated"], job["error_count"]) == (6, 6, 3, 1, 2)
    assert job["errors"][0].startswith("row 4: email: Not a valid email address")
    assert job["errors"][1].startswith("row 5: timezone: Unknown time zone 'Mars/Base'")
    assert job["finished_at"] is not None

    rows = stored(alice.account_id)
    assert set(rows) == {"ada@example.com", "bob@example.com", "dee@example.com"}
    ada = rows["ada@example.com"]
    assert (ada.first_name, ada.last_name, ada.timezone, ada.status) == ("Ada", "Lovelace", "Europe/London", "active")
    assert ada.tags == ["vip", "news", "beta", "early"], "a repeated address merges into one subscriber"
    assert ada.attributes == {"plan": "pro", "city": "London"}
    assert rows["bob@example.com"].attributes == {"plan": "free"}, "empty cells are not attributes"
    assert rows["dee@example.com"].first_name == 'Dee, the "quoted"'


def test_it_imports_a_json_list_and_a_reimport_updates_instead_of_duplicating(client, alice, bob, worker):
    first = [{"email": "ada@example.com", "first_name": "Ada", "tags": ["vip"], "attributes": {"plan": "free", "seats": 2}},
             {"email": "bob@example.com", "timezone": "Asia/Tokyo", "company": "Acme"},
             "not an object",
             {"email": "cy@example.com", "attributes": {"bad": {"nested": True}}}]
    job = wait_for_job(client, alice, post_import(client, alice, json.dumps(first), "application/json"))
    assert (job["created"], job["updated"], job["error_count"]) == (2, 0, 2), job
    assert job["errors"] == ["row 3: Must be an object.", "row 4: attributes.bad: Must be a string, number, "
                             "boolean or a list of those."]
    before = stored(alice.account_id)
    client.patch(f"{URL}/{before['bob@example.com'].id}", json={"status": "unsubscribed"}, headers=alice.headers)

    again = [{"email": "ADA@example.com", "last_name": "Lovelace", "tags": ["news", "vip"], "attributes": {"plan": "pro"}},
             {"email": "bob@example.com", "first_name": "Bob"},
             {"email": "dee@example.com", "first_name": "D\tee \\N \\ \nnew", "tags": ["\u00e9t\u00e9"]}]
    job = wait_for_job(client, alice, post_import(client, alice, json.dumps(again), "application/json"))
    assert (job["created"], job["updated"], job["error_count"]) == (1, 2, 0), job

    after = stored(alice.account_id)
    assert set(after) == {"ada@example.com", "bob@example.com", "dee@example.com"}
    ada = after["ada@example.com"]
    assert ada.id == before["ada@example.com"].id
    assert (ada.first_name, ada.last_name) == ("Ada", "Lovelace"), "a field the row leaves out is kept"
    assert ada.tags == ["vip", "news"] and ada.attributes == {"plan": "pro", "seats": 2}
    bob_row = after["bob@example.com"]
    assert bob_row.status == "unsubscribed", "an import never re-subscribes anyone"
    assert (bob_row.first_name, bob_row.timezone, bob_row.attributes) == ("Bob", "Asia/Tokyo", {"company": "Acme"})
    dee = after["dee@example.com"]
    assert (dee.first_name, dee.tags) == ("D\tee \\N \\ \nnew", ["\u00e9t\u00e9"]), "COPY escaping round-trips"
    assert stored(bob.account_id) == {}, "Bob's account is untouched"


def test_it_imports_a_multipart_csv_file(client, alice, worker):
    data = {"file": (io.BytesIO("\ufeffemail,tags\nada@example.com,a|b\n".encode()), "people.csv")}
    response = client.post(f"{URL}/import", data=data, content_type="multipart/form-data", headers=alice.headers)
    assert response.status_code == 202, response.get_json()
    job = wait_for_job(client, alice, response.get_json()["job_id"])
    assert (job["status"], job["created"]) == ("completed", 1)
    assert stored(alice.account_id)["ada@example.com"].tags == ["a", "b"]


def test_it_finishes_an_import_of_100000_rows(client, alice, worker):
    lines = ["email,first_name,tags,score"] + [f"user{i}@example.com,User{i},t{i % 5},{i}" for i in range(100_000)]
    lines[50_001] = "broken-row,,,"
    job_id = post_import(client, alice, "\n".join(lines) + "\n", "text/csv")
    job = wait_for_job(client, alice, job_id, timeout=240)
    assert job["status"] == "completed", job
    assert (job["total"], job["processed"], job["created"], job["error_count"]) == (100_000, 100_000, 99_999, 1)
    assert len(job["errors"]) == 1 and job["errors"][0].startswith("row 50002: email: Not a valid email address")
    with db.session_scope() as s:
        count = s.scalar(select(func.count()).select_from(Subscriber).where(Subscriber.account_id == alice.account_id))
        sample = s.scalar(select(Subscriber).where(Subscriber.email == "user77777@example.com"))
        assert count == 99_999
        assert (sample.first_name, sample.tags, sample.attributes) == ("User77777", ["t2"], {"score": "77777"})


def test_it_claims_an_import_once_even_if_the_task_arrives_twice(alice):
    from audience.imports import claim_import, create_import_job

    with db.session_scope() as s:
        job_id = create_import_job(s, alice.account_id, b"email\nada@example.com\n", "csv", NOW).id
    with db.session_scope() as s:
        assert claim_import(s, job_id, NOW) is True
    with db.session_scope() as s:
        assert claim_import(s, job_id, NOW) is False


def test_it_upserts_on_sqlite_through_the_portable_path(tmp_path: Path):
    """The embedded default runs the same import without PostgreSQL's ON CONFLICT."""
    from accounts.keys import create_account
    from audience.payloads import read_rows
    from audience.upsert import upsert_rows
    from sqlalchemy.orm import sessionmaker
    from tests.support.database import sqlite_engine

    with sqlite_engine(tmp_path) as engine:
        with sessionmaker(bind=engine)() as s:
            account_id = create_account(s, "Solo", "solo@example.com", "Solo")[0].id
            csv = b"email,first_name,tags,plan\na@example.com,Ann,x,free\nb@example.com,,y,\nA@example.com,,z,pro\n"
            rows = [row for _, row in read_rows(csv, "csv")]
            assert upsert_rows(s, account_id, rows, NOW) == (2, 1)
            assert upsert_rows(s, account_id, rows[1:2] + [rows[0]], NOW) == (0, 2)
            s.commit()
            found = {r.email: r for r in s.scalars(select(Subscriber))}
            assert set(found) == {"a@example.com", "b@example.com"}
            assert (found["a@example.com"].first_name, found["a@example.com"].tags) == ("Ann", ["x", "z"])
            assert found["a@example.com"].attributes == {"plan": "free"}, "the re-import's later row wins"


def test_an_import_whose_worker_died_is_resumed_after_its_last_chunk(alice, worker):
    """A dead worker's lease lapses; the tick's sweep puts the job back to pending and a
    new task finishes it from the last committed chunk, with exact counts."""
    from datetime import timedelta

    from audience.imports import claim_import, create_import_job, run_import
    from audience.upsert import CHUNK
    from models import Job
    from tasks.audience import import_subscribers

    rows = CHUNK * 2 + 10
    payload = ("email\n" + "".join(f"resume{i}@example.com\n" for i in range(rows))).encode()
    with db.session_scope() as s:
        job_id = create_import_job(s, alice.account_id, payload, "csv", NOW).id
    with db.session_scope() as s:
        assert claim_import(s, job_id, NOW, timedelta(seconds=30))
    with db.session_scope() as s:
        steps = run_import(s, job_id, lambda: NOW, timedelta(seconds=30))
        next(steps)  # one chunk committed, then the worker dies
        s.commit()
    assert imports_to_resume_now(NOW + timedelta(seconds=10)) == [], "the lease still holds"
    assert imports_to_resume_now(NOW + timedelta(seconds=31)) == [job_id]
    import_subscribers.delay(job_id)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with db.session_scope() as s:
            job = s.get(Job, job_id)
            if job.status == "completed":
                break
        time.sleep(0.1)
    assert (job.status, job.processed, job.created_count, job.updated_count) == ("completed", rows, rows, 0)
    with db.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Subscriber).where(Subscriber.email.like("resume%"))) == rows


def imports_to_resume_now(now):  # type: ignore[no-untyped-def]
    from audience.imports import imports_to_resume

    with db.session_scope() as s:
        return imports_to_resume(s, now)


SURROGATE_ROWS = ('[{"email": "ann@example.com"},'
                  ' {"email": "bad1@example.com", "first_name": "B\\ud800"},'
                  ' {"email": "bad2@example.com", "attributes": {"k\\udfff": 1}},'
                  ' {"email": "bad3@example.com", "tags": ["ok", "\\ud83d"]},'
                  ' {"email": "cy@example.com", "first_name": "Cy \\ud83d\\ude00"}]')


def test_a_json_import_reports_rows_with_a_lone_surrogate_and_imports_the_others(client, alice, worker):
    job = wait_for_job(client, alice, post_import(client, alice, SURROGATE_ROWS, "application/json"))
    assert job["status"] == "completed", job
    assert (job["processed"], job["created"], job["error_count"]) == (5, 2, 3), job
    assert job["errors"] == ["row 2: first_name: Contains a lone surrogate, which is not a character.",
                             "row 3: attributes.k\\udfff: Contains a lone surrogate, which is not a character.",
                             "row 4: tags.1: Contains a lone surrogate, which is not a character."]
    rows = stored(alice.account_id)
    assert set(rows) == {"ann@example.com", "cy@example.com"}
    assert rows["cy@example.com"].first_name == "Cy \U0001F600", "a surrogate pair is one real character"


def test_a_row_the_database_refuses_is_reported_alone_and_the_chunk_is_kept(client, alice, worker):
    """Whatever the checks miss and PostgreSQL refuses (here a CHECK constraint added
    for the test) costs that row only, reported by its number."""
    from sqlalchemy import text

    with db.get_engine().begin() as conn:
        conn.execute(text("ALTER TABLE subscribers ADD CONSTRAINT test_refused CHECK (first_name <> 'Refused')"))
    try:
        csv = "email,first_name\nann@example.com,Ann\nrex@example.com,Refused\nann@example.com,Annie\ncy@example.com,\n"
        job = wait_for_job(client, alice, post_import(client, alice, csv, "text/csv"))
    finally:
        with db.get_engine().begin() as conn:
            conn.execute(text("ALTER TABLE subscribers DROP CONSTRAINT test_refused"))
    assert job["status"] == "completed", job
    assert (job["processed"], job["created"], job["updated"], job["error_count"]) == (4, 2, 1, 1), job
    assert job["errors"] == ["row 3: The database refused the row (CheckViolation)."]
    rows = stored(alice.account_id)
    assert set(rows) == {"ann@example.com", "cy@example.com"}
    assert rows["ann@example.com"].first_name == "Annie"


def test_on_sqlite_a_refused_row_and_a_surrogate_row_are_reported_and_the_others_imported(tmp_path: Path):
    from sqlalchemy import text
    from sqlalchemy.orm import sessionmaker

    from accounts.keys import create_account
    from audience.imports import claim_import, create_import_job, run_import
    from tests.support.database import sqlite_engine

    with sqlite_engine(tmp_path) as engine:
        with sessionmaker(bind=engine)() as s:
            s.execute(text("CREATE TRIGGER test_refused BEFORE INSERT ON subscribers WHEN NEW.first_name = 'Refused' "
                           "BEGIN SELECT RAISE(ABORT, 'refused'); END"))
            account_id = create_account(s, "Solo", "solo@example.com", "Solo")[0].id
            payload = ('[{"email": "a@example.com"}, {"email": "r@example.com", "first_name": "Refused"},'
                       ' {"email": "s@example.com", "last_name": "\\udc80"}, {"email": "b@example.com"}]').encode()
            job_id = create_import_job(s, account_id, payload, "json", NOW).id
            assert claim_import(s, job_id, NOW)
            for job in run_import(s, job_id, lambda: NOW):
                s.commit()
            assert (job.status, job.processed, job.created_count, job.error_count) == ("completed", 4, 2, 2)
            assert job.errors == ["row 2: The database refused the row (IntegrityError).",
                                  "row 3: last_name: Contains a lone surrogate, which is not a character."]
            assert set(s.scalars(select(Subscriber.email))) == {"a@example.com", "b@example.com"}


def test_a_json_import_reports_an_integer_past_64_bits_by_row_instead_of_refusing_the_file(client, alice, worker):
    body = ('[{"email": "ann@example.com", "attributes": {"seats": 9223372036854775807}},'
            ' {"email": "big@example.com", "attributes": {"seats": ' + "9" * 5000 + '}},'
            ' {"email": "neg@example.com", "first_name": -9223372036854775809}]')
    job = wait_for_job(client, alice, post_import(client, alice, body, "application/json"))
    assert (job["status"], job["created"], job["error_count"]) == ("completed", 1, 2), job
    assert job["errors"] == ["row 2: attributes.seats: Integer out of range (at most 64 bits).",
                             "row 3: first_name: Integer out of range (at most 64 bits)."]
    assert stored(alice.account_id)["ann@example.com"].attributes == {"seats": 2**63 - 1}
