"""Bad input of every kind is a 4xx whose message names the field, never a 500 and
never a half-written row: lone surrogates, JSON nested thousands deep, integers of
thousands of digits, ids past the database's range, datetimes that overflow when
converted to UTC, and CSV headers too wide to check in one request."""
from __future__ import annotations

from typing import Any

import pytest
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


SURROGATE = "\\ud800"  # as JSON spells it: a valid escape that decodes to no character
TOKEN = "/api/v1/auth/token"


def raw_json(client: Any, method: str, path: str, body: str, headers: dict[str, str]) -> Any:
    return getattr(client, method)(path, data=body, content_type="application/json", headers=headers)


def count(table: str) -> int:
    from sqlalchemy import text

    with db.session_scope() as s:
        return int(s.scalar(text(f"SELECT count(*) FROM {table}")))


# (method, path, JSON body with {S} for the lone surrogate, the field it is in, the table it would land in)
SURROGATE_CASES = [
    ("post", "/api/v1/subscribers", '{"email": "ada@example.com", "first_name": "A{S}"}', "first_name", "subscribers"),
    ("post", "/api/v1/subscribers", '{"email": "ada@example.com", "attributes": {"plan": "{S}"}}',
     "attributes.plan", "subscribers"),
    ("post", "/api/v1/subscribers", '{"email": "ada@example.com", "tags": ["ok", "{S}x"]}', "tags.1", "subscribers"),
    ("post", "/api/v1/subscribers", '{"email": "ada@example.com", "attributes": {"k{S}": 1}}',
     "attributes.k\\ud800", "subscribers"),
    ("post", "/api/v1/templates", '{"name": "{S}", "subject": "Hi"}', "name", "templates"),
    ("post", "/api/v1/templates", '{"name": "t", "subject": "Hi", "html": "<p>{S}</p>"}', "html", "templates"),
    ("post", "/api/v1/email-sequences", '{"name": "{S}", "steps": [{"type": "delay", "seconds": 5}]}', "name",
     "sequences"),
    ("post", "/api/v1/email-sequences", '{"name": "s", "steps": [{"type": "email", "subject": "{S}"}]}',
     "steps.0.subject", "sequences"),
    ("patch", "/api/v1/account", '{"name": "{S}"}', "name", None),
    ("patch", "/api/v1/account", '{"postal_address": "1 Main St{S}"}', "postal_address", None),
    ("post", TOKEN, '{"api_key": "{S}"}', "api_key", None),
    ("post", "/api/v1/suppressions", '{"email": "a{S}@example.com"}', "email", "suppressions"),
    ("post", "/api/v1/events", '{"email": "ada@example.com", "name": "x", "properties": {"p": "{S}"}}',
     "properties.p", "events"),
]


@pytest.mark.parametrize(("method", "path", "body", "field", "table"), SURROGATE_CASES,
                         ids=[f"{c[0]} {c[1]} {c[3]}" for c in SURROGATE_CASES])
def test_a_lone_surrogate_anywhere_is_a_422_naming_the_field(client: Any, alice: Any, method: str, path: str,
                                                             body: str, field: str, table: str | None) -> None:
    client.post("/api/v1/subscribers", json={"email": "ada@example.com"}, headers=alice.headers)
    before = count(table) if table else 0
    response = raw_json(client, method, path, body.replace("{S}", SURROGATE), alice.headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    payload = response.get_json()
    assert field.split(".")[0] in payload["errors"]["json"], payload  # nested as marshmallow nests
    assert field in payload["message"]
    if table:
        assert count(table) == before, "nothing is written"
    account = client.get("/api/v1/account", headers=alice.headers).get_json()
    assert "\\ud800" not in str(account) and account["name"] == "Alice"


DEEP = 5000


@pytest.mark.parametrize("path", ["/api/v1/subscribers", "/api/v1/email-sequences", "/api/v1/events", TOKEN])
def test_json_nested_thousands_deep_is_a_400_not_a_500(client: Any, alice: Any, path: str) -> None:
    body = '{"name": "x", "attributes": ' + "[" * DEEP + "]" * DEEP + "}"
    response = raw_json(client, "post", path, body, alice.headers)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "nested too deep" in response.get_json()["message"]


def test_json_nested_below_the_parsers_limit_is_refused_naming_the_field(client: Any, alice: Any) -> None:
    body = '{"name": "x", "settings": {"a": ' + "[" * 900 + "]" * 900 + '}, "steps": []}'
    response = raw_json(client, "post", "/api/v1/email-sequences", body, alice.headers)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "settings.a" in response.get_json()["message"]


HUGE = "9" * 5000


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/subscribers", '{"email": "ada@example.com", "attributes": {"n": {N}}}', "attributes.n"),
    ("/api/v1/email-sequences", '{"name": "s", "steps": [{"type": "delay", "seconds": {N}}]}', "steps.0.seconds"),
    ("/api/v1/events", '{"subscriber_id": {N}, "name": "x"}', "subscriber_id"),
    ("/api/v1/events", '{"email": "ada@example.com", "name": "x", "value": 1{N}.5}', "value"),
    ("/api/v1/events", '{"email": "ada@example.com", "name": "x", "value": 1e{N}}', "value"),
    ("/api/v1/warming-plans", '{"provider_id": 1, "days": {N}}', "days"),
    ("/api/v1/templates/1/preview", '{"subscriber_id": {N}}', "subscriber_id"),
])
def test_an_integer_of_thousands_of_digits_is_a_422_naming_the_field(client: Any, alice: Any, path: str, body: str,
                                                                     field: str) -> None:
    response = raw_json(client, "post", path, body.replace("{N}", HUGE), alice.headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert field.split(".")[0] in response.get_json()["errors"]["json"]
    assert field in response.get_json()["message"]


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 10**30])
def test_an_integer_past_64_bits_in_a_raw_json_field_is_a_422(client: Any, alice: Any, number: int) -> None:
    response = client.post("/api/v1/subscribers", json={"email": "ada@example.com", "attributes": {"n": number}},
                           headers=alice.headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "attributes.n" in response.get_json()["message"]


def test_an_integer_of_64_bits_in_a_raw_json_field_is_kept(client: Any, alice: Any) -> None:
    response = client.post("/api/v1/subscribers", json={"email": "ada@example.com", "attributes": {"n": 2**63 - 1}},
                           headers=alice.headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["attributes"] == {"n": 2**63 - 1}


@pytest.mark.parametrize("occurred_at", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
                                         "9001-01-01T00:00:00+00:00"])
def test_an_occurred_at_that_cannot_be_converted_to_utc_is_a_422_naming_it(client: Any, alice: Any,
                                                                           occurred_at: str) -> None:
    client.post("/api/v1/subscribers", json={"email": "ada@example.com"}, headers=alice.headers)
    response = client.post("/api/v1/events", json={"email": "ada@example.com", "name": "signup",
                                                   "occurred_at": occurred_at}, headers=alice.headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "occurred_at" in response.get_json()["errors"]["json"]
    assert count("events") == 0


def test_a_warming_plan_starting_in_year_9999_is_a_422_naming_start_date(client: Any, alice: Any) -> None:
    response = client.post("/api/v1/warming-plans", json={"provider_id": 1, "start_date": "9999-12-31"},
                           headers=alice.headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "start_date" in response.get_json()["errors"]["json"]


ID_PATHS = ["/api/v1/subscribers/{id}", "/api/v1/templates/{id}", "/api/v1/email-sequences/{id}",
            "/api/v1/email-sequences/{id}/analytics", "/api/v1/email-sequences/{id}/enrollments",
            "/api/v1/jobs/{id}", "/api/v1/providers/{id}", "/api/v1/warming-plans/{id}", "/api/v1/suppressions/{id}"]


@pytest.mark.parametrize("path", ID_PATHS)
@pytest.mark.parametrize("digits", [20, 30, 5000])
def test_a_path_id_past_the_id_columns_is_a_404(client: Any, alice: Any, path: str, digits: int) -> None:
    response = client.get(path.replace("{id}", "9" * digits), headers=alice.headers)
    assert response.status_code in (404, 405), response.get_data(as_text=True)


@pytest.mark.parametrize("query", ["page=" + "9" * 5000, "page_size=" + "9" * 5000, "page=" + "9" * 30,
                                   "subscriber_id=" + "9" * 30, "sequence_id=" + "9" * 5000])
def test_a_huge_number_in_the_query_string_is_a_4xx(client: Any, alice: Any, query: str) -> None:
    response = client.get(f"/api/v1/messages?{query}", headers=alice.headers)
    assert response.status_code in (200, 422), response.get_data(as_text=True)


# Run in a subprocess: the embedded SQLite app needs its own process-wide engine.
SQLITE_SCRIPT = r'''
import json, sys
from settings import load_settings
from web.app import create_app

app = create_app(load_settings())
client = app.test_client()
admin = {"Authorization": "Bearer " + sys.argv[1]}
account = client.post("/api/v1/accounts", json={"name": "Solo", "from_email": "solo@example.com"}, headers=admin)
key = {"X-API-Key": account.get_json()["api_key"]}
big = str(2**63 + 1)
requests = {
    "GET /subscribers/<2^63+1>": client.get("/api/v1/subscribers/" + big, headers=key),
    "DELETE /templates/<2^63+1>": client.delete("/api/v1/templates/" + big, headers=key),
    "GET /email-sequences/<2^63+1>/enrollments": client.get(f"/api/v1/email-sequences/{big}/enrollments", headers=key),
    "GET /jobs/<10^30>": client.get("/api/v1/jobs/" + "1" * 30, headers=key),
    "GET /messages?subscriber_id=2^63+1": client.get("/api/v1/messages?subscriber_id=" + big, headers=key),
    "POST /subscribers attributes 2^63+1": client.post("/api/v1/subscribers", data='{"email": "a@example.com", '
                                                     '"attributes": {"n": ' + big + "}}",
                                                     content_type="application/json", headers=key),
    "POST /email-sequences goto 2^63+1": client.post("/api/v1/email-sequences", data='{"name": "s", "steps": '
                                                     '[{"type": "goto", "goto": ' + big + "}]}",
                                                     content_type="application/json", headers=key),
}
print(json.dumps({name: response.status_code for name, response in requests.items()}))
'''


def test_ids_past_64_bits_are_a_4xx_on_sqlite(tmp_path: Any) -> None:
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ADMIN_TOKEN, ROOT
    from tests.support.database import migrate

    url = f"sqlite:///{tmp_path / 'eseq.sqlite'}"
    migrate(url)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")}
    env.update(DATABASE_URL=url, ESEQ_VAR_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", SQLITE_SCRIPT, ADMIN_TOKEN], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    statuses = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(400 <= code < 500 for code in statuses.values()), statuses


def test_a_deeply_nested_import_body_with_a_nul_is_a_4xx(client: Any, alice: Any) -> None:
    body = "[" * DEEP + '"\\u0000"' + "]" * DEEP
    response = raw_json(client, "post", IMPORT, body, alice.headers)
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    with db.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0



def test_a_chunked_json_body_is_checked_too(client: Any, alice: Any) -> None:
    """No Content-Length (Transfer-Encoding: chunked, which the server terminates)."""
    import io

    body = b'{"email": "ada@example.com", "first_name": "A\\ud800"}'
    response = client.post("/api/v1/subscribers", input_stream=io.BytesIO(body), content_type="application/json",
                           headers={**alice.headers, "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "first_name" in response.get_json()["message"]
    assert count("subscribers") == 0
