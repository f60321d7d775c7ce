"""Bad input of every kind is a 4xx whose message names the field, never a 500 and
never a half-written row: lone surrogates, JSON nested thousands deep, integers of
thousands of digits, ids past the database's range, datetimes that overflow when
converted to UTC, and CSV headers too wide to check in one request."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from audience.payloads import MAX_COLUMNS
from models import Job, db

IMPORT = "/api/v1/subscribers/import"


def test_a_csv_header_wider_than_the_column_cap_is_refused_naming_the_header(client: Any, alice: Any) -> None:
    header = ",".join(["email", *(f"c{i}" for i in range(MAX_COLUMNS))])
    response = client.post(IMPORT, data=f"{header}\nada@example.com\n", content_type="text/csv",
                           headers=alice.headers)
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert "header" in body["errors"]["body"]
    assert f"at most {MAX_COLUMNS}" in body["message"]
    with db.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0


def test_a_csv_header_at_the_column_cap_is_accepted(client: Any, alice: Any) -> None:
    header = ",".join(["email", *(f"c{i}" for i in range(MAX_COLUMNS - 1))])
    response = client.post(IMPORT, data=f"{header}\nada@example.com\n", content_type="text/csv",
                           headers=alice.headers)
    assert response.status_code == 202, response.get_json()


def test_a_csv_header_naming_columns_twice_lists_each_repeat_once(client: Any, alice: Any) -> None:
    header = "email,plan,Email,city,plan,plan,city,x"
    response = client.post(IMPORT, data=f"{header}\nada@example.com\n", content_type="text/csv",
                           headers=alice.headers)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["message"] == "The CSV header row repeats: city, email, plan."
