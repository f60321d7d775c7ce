"""``POST /api/v1/events/import``: what the request itself accepts or refuses (the rows
are checked by the job: tests/integration/test_event_import.py)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from models import Job, JobPart, db
from tests.conftest import Tenant

URL = "/api/v1/events/import"
HEADER = "email,name,occurred_at\n"


def stored() -> tuple[int, int]:
    with db.session_scope() as s:
        return (int(s.scalar(select(func.count()).select_from(Job)) or 0),
                int(s.scalar(select(func.count()).select_from(JobPart)) or 0))


def test_a_csv_history_is_accepted_as_a_pending_job_counting_its_rows(client: Any, alice: Tenant) -> None:
    body = HEADER + "ada@example.com,opened,2025-01-01T00:00:00Z\n" * 3 + "\nbob@example.com,sent,2025-01-01T00:00:00Z"
    response = client.post(URL, data=body, content_type="text/csv", headers=alice.headers)
    assert response.status_code == 202, response.get_json()
    accepted = response.get_json()
    assert (accepted["status"], accepted["total"]) == ("pending", 5)  # lines: the blank one is dropped by the job
    job = client.get(f"/api/v1/jobs/{accepted['job_id']}", headers=alice.headers).get_json()
    assert (job["kind"], job["status"], job["processed"]) == ("event_import", "pending", 0)
    assert stored() == (1, 1)


def test_json_lines_are_accepted_under_their_media_type(client: Any, alice: Tenant) -> None:
    body = '{"email": "a@example.com", "name": "opened", "occurred_at": "2025-01-01T00:00:00Z"}\n' * 2
    response = client.post(URL, data=body, content_type="application/x-ndjson", headers=alice.headers)
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["total"] == 2


def test_a_csv_header_without_a_required_column_is_a_422_naming_the_header(client: Any, alice: Tenant) -> None:
    response = client.post(URL, data="email,name\na@example.com,opened\n", content_type="text/csv",
                           headers=alice.headers)
    assert response.status_code == 422
    assert "occurred_at" in response.get_json()["errors"]["body"]["header"][0]
    assert stored() == (0, 0), "nothing half-written"


def test_a_csv_header_with_an_unknown_column_is_a_422_naming_the_header(client: Any, alice: Tenant) -> None:
    response = client.post(URL, data=HEADER.strip() + ",colour\n", content_type="text/csv", headers=alice.headers)
    assert response.status_code == 422
    assert "colour" in response.get_json()["errors"]["body"]["header"][0]


def test_an_empty_upload_is_a_422_naming_the_body(client: Any, alice: Tenant) -> None:
    for body, content_type in (("", "text/csv"), ("\n\n", "application/x-ndjson"), (HEADER, "text/csv")):
        response = client.post(URL, data=body, content_type=content_type, headers=alice.headers)
        assert response.status_code == 422, (body, response.get_json())
        assert list(response.get_json()["errors"]["body"]) == ["body"]
    assert stored() == (0, 0)


def test_a_json_list_or_a_form_is_a_415(client: Any, alice: Tenant) -> None:
    assert client.post(URL, json=[{"email": "a@example.com"}], headers=alice.headers).status_code == 415
    assert client.post(URL, data={"file": "x"}, headers=alice.headers).status_code == 415


def test_more_rows_than_the_limit_is_a_413_before_anything_is_kept(client: Any, alice: Tenant, monkeypatch) -> None:
    from audience import event_import

    monkeypatch.setattr(event_import, "MAX_ROWS", 3)
    ok = client.post(URL, data=HEADER + "a@example.com,opened,2025-01-01T00:00:00Z\n" * 3, content_type="text/csv",
                     headers=alice.headers)
    assert ok.status_code == 202
    over = client.post(URL, data=HEADER + "a@example.com,opened,2025-01-01T00:00:00Z\n" * 4, content_type="text/csv",
                       headers=alice.headers)
    assert over.status_code == 413
    assert "3 rows" in over.get_json()["errors"]["body"]["body"][0]
    assert stored() == (1, 1), "only the accepted upload was kept"


def test_a_body_over_the_byte_limit_is_a_413_naming_the_limit(client: Any, alice: Tenant, monkeypatch) -> None:
    from audience import event_import

    monkeypatch.setattr(event_import, "MAX_BYTES", 100)
    monkeypatch.setattr(event_import, "PART_BYTES", 40)
    body = HEADER + "a@example.com,opened,2025-01-01T00:00:00Z\n" * 3
    response = client.post(URL, data=body, content_type="text/csv", headers=alice.headers)
    assert response.status_code == 413
    assert stored() == (0, 0), "the parts written before the limit was reached are rolled back"


def test_without_credentials_it_is_a_401(client: Any) -> None:
    assert client.post(URL, data=HEADER, content_type="text/csv").status_code == 401
