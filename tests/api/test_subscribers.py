"""Subscribers over HTTP against the real database: happy paths, every validation
error as a 422 naming its field, tenancy (Alice never sees Bob's), and imports
accepted as jobs (their processing is tested with a worker in tests/integration)."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from models import Enrollment, Job, Subscriber, db
from tests.support import factories

URL = "/api/v1/subscribers"


def create(client, tenant, **body):
    body.setdefault("email", "ada@example.com")
    return client.post(URL, json=body, headers=tenant.headers)


def test_it_creates_an_active_subscriber_with_a_normalised_address(client, alice):
    response = create(client, alice, email="  Ada.Lovelace@EXAMPLE.com ", first_name="Ada", last_name="Lovelace",
                      timezone="Europe/London", attributes={"plan": "pro", "seats": 3, "beta": True, "langs": ["en", "fr"]},
                      tags=["vip", " news ", "vip"])
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["id"] > 0 and body["status"] == "active"
    assert body["email"] == "ada.lovelace@example.com"
    assert body["timezone"] == "Europe/London"
    assert body["attributes"] == {"plan": "pro", "seats": 3, "beta": True, "langs": ["en", "fr"]}
    assert body["tags"] == ["vip", "news"]
    with db.session_scope() as s:
        assert s.get(Subscriber, body["id"]).account_id == alice.account_id


def test_it_refuses_the_same_address_twice_in_one_account_with_409(client, alice, bob):
    assert create(client, alice, email="ada@example.com").status_code == 201
    again = create(client, alice, email="ADA@example.com")
    assert again.status_code == 409
    assert "ada@example.com" in again.get_json()["message"]
    assert create(client, bob, email="ada@example.com").status_code == 201, "another account may have the address"


@pytest.mark.parametrize("body, field", [
    ({"email": "not-an-email"}, "email"),
    ({"email": "ada@localhost"}, "email"),
    ({"email": ""}, "email"),
    ({"email": 42}, "email"),
    ({"first_name": "Ada"}, "email"),
    ({"email": "ada@example.com", "timezone": "Mars/Olympus"}, "timezone"),
    ({"email": "ada@example.com", "timezone": "../../etc/passwd"}, "timezone"),
    ({"email": "ada@example.com", "first_name": "x" * 201}, "first_name"),
    ({"email": "ada@example.com", "last_name": "a\x00b"}, "last_name"),
    ({"email": "ada@example.com", "tags": "vip"}, "tags"),
    ({"email": "ada@example.com", "tags": ["x" * 65]}, "tags.0"),
    ({"email": "ada@example.com", "tags": [1, 2]}, "tags"),
    ({"email": "ada@example.com", "tags": [f"t{i}" for i in range(101)]}, "tags"),
    ({"email": "ada@example.com", "attributes": ["plan"]}, "attributes"),
    ({"email": "ada@example.com", "attributes": {"nested": {"a": 1}}}, "attributes.nested"),
    ({"email": "ada@example.com", "attributes": {"list": [{"a": 1}]}}, "attributes.list.0"),
    ({"email": "ada@example.com", "attributes": {"x": "a\x00"}}, "attributes.x"),
    ({"email": "ada@example.com", "attributes": {f"k{i}": i for i in range(101)}}, "attributes"),
    ({"email": "ada@example.com", "status": "unsubscribed"}, "status"),
    ({"email": "ada@example.com", "colour": "blue"}, "colour"),
])
def test_it_refuses_invalid_fields_with_422_naming_the_field(client, alice, body, field):
    response = client.post(URL, json=body, headers=alice.headers)
    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]["json"]
    assert field in errors, errors
    assert field.split(".")[0] in response.get_json()["message"]


def test_it_refuses_non_finite_numbers_in_attributes(client, alice):
    raw = '{"email": "ada@example.com", "attributes": {"score": NaN}}'
    response = client.post(URL, data=raw, content_type="application/json", headers=alice.headers)
    assert response.status_code == 422
    assert "attributes.score" in response.get_json()["errors"]["json"]


def test_it_requires_credentials_everywhere(client, alice):
    sid = create(client, alice).get_json()["id"]
    for method, url in (("post", URL), ("get", URL), ("get", f"{URL}/{sid}"), ("patch", f"{URL}/{sid}"),
                        ("delete", f"{URL}/{sid}"), ("post", f"{URL}/import"), ("get", "/api/v1/jobs"),
                        ("get", "/api/v1/jobs/1")):
        response = getattr(client, method)(url, json={"email": "x@example.com"})
        assert response.status_code == 401, (method, url)
    wrong = client.get(URL, headers={"X-API-Key": alice.api_key + "x"})
    assert wrong.status_code == 401


def test_it_reads_updates_and_deletes_a_subscriber(client, alice):
    sid = create(client, alice, first_name="Ada", attributes={"plan": "free", "city": "London"}, tags=["a"]).get_json()["id"]
    assert client.get(f"{URL}/{sid}", headers=alice.headers).get_json()["first_name"] == "Ada"

    patched = client.patch(f"{URL}/{sid}", json={"last_name": "Lovelace", "attributes": {"plan": "pro", "city": None},
                                                  "tags": ["b", "c"], "status": "unsubscribed",
                                                  "email": "Ada2@Example.com"}, headers=alice.headers)
    assert patched.status_code == 200, patched.get_json()
    body = patched.get_json()
    assert (body["first_name"], body["last_name"], body["email"]) == ("Ada", "Lovelace", "ada2@example.com")
    assert body["attributes"] == {"plan": "pro"}
    assert body["tags"] == ["b", "c"] and body["status"] == "unsubscribed"

    assert client.delete(f"{URL}/{sid}", headers=alice.headers).status_code == 204
    assert client.get(f"{URL}/{sid}", headers=alice.headers).status_code == 404


def test_it_refuses_an_update_to_an_address_already_taken_or_invalid(client, alice):
    create(client, alice, email="taken@example.com")
    sid = create(client, alice, email="ada@example.com").get_json()["id"]
    assert client.patch(f"{URL}/{sid}", json={"email": "TAKEN@example.com"}, headers=alice.headers).status_code == 409
    for body, field in (({"email": "nope"}, "email"), ({"status": "gone"}, "status"), ({"tags": None, "attributes": 1}, "attributes")):
        bad = client.patch(f"{URL}/{sid}", json=body, headers=alice.headers)
        assert bad.status_code == 422 and field in bad.get_json()["errors"]["json"], bad.get_json()
    same = client.patch(f"{URL}/{sid}", json={"email": "Ada@example.com"}, headers=alice.headers)
    assert same.status_code == 200


def test_it_hides_another_accounts_subscriber_behind_404(client, alice, bob):
    sid = create(client, bob).get_json()["id"]
    assert client.get(f"{URL}/{sid}", headers=alice.headers).status_code == 404
    assert client.patch(f"{URL}/{sid}", json={"first_name": "Eve"}, headers=alice.headers).status_code == 404
    assert client.delete(f"{URL}/{sid}", headers=alice.headers).status_code == 404
    assert client.get(f"{URL}/{sid}", headers=bob.headers).get_json()["first_name"] is None
    assert client.get(URL, headers=alice.headers).get_json() == []


def test_it_ends_the_enrollments_of_a_deleted_subscriber(client, alice):
    sid = create(client, alice).get_json()["id"]
    seq = factories.sequence(alice.account_id, [{"type": "delay", "seconds": 60}])
    from models import utcnow

    [eid] = factories.enroll(alice.account_id, seq, [sid], utcnow())
    assert client.delete(f"{URL}/{sid}", headers=alice.headers).status_code == 204
    with db.session_scope() as s:
        assert s.get(Enrollment, eid) is None


def test_it_paginates_with_the_x_pagination_header(client, alice):
    for i in range(25):
        create(client, alice, email=f"user{i}@example.com")
    first = client.get(URL, query_string={"page": 1, "page_size": 10}, headers=alice.headers)
    assert first.status_code == 200
    assert len(first.get_json()) == 10
    pagination = json.loads(first.headers["X-Pagination"])
    assert pagination["total"] == 25 and pagination["total_pages"] == 3
    last = client.get(URL, query_string={"page": 3, "page_size": 10}, headers=alice.headers)
    assert len(last.get_json()) == 5
    assert client.get(URL, query_string={"page_size": 0}, headers=alice.headers).status_code == 422


def test_it_filters_by_status_tag_and_part_of_the_email(client, alice):
    a = create(client, alice, email="ann@shop.example", tags=["vip", "news"]).get_json()["id"]
    b = create(client, alice, email="bob@other.example", tags=["news"]).get_json()["id"]
    c = create(client, alice, email="cy_x@shop.example").get_json()["id"]
    client.patch(f"{URL}/{b}", json={"status": "unsubscribed"}, headers=alice.headers)

    def ids(**query):
        response = client.get(URL, query_string=query, headers=alice.headers)
        assert response.status_code == 200, response.get_json()
        return sorted(s["id"] for s in response.get_json())

    assert ids(tag="news") == [a, b]
    assert ids(tag="vip") == [a]
    assert ids(status="unsubscribed") == [b]
    assert ids(status="active", tag="news") == [a]
    assert ids(email="SHOP") == [a, c]
    assert ids(email="_") == [c], "LIKE wildcards are matched literally"
    for query, field in (({"status": "lost"}, "status"), ({"email": "a\x00"}, "email"), ({"tag": "\x00"}, "tag")):
        bad = client.get(URL, query_string=query, headers=alice.headers)
        assert bad.status_code == 422 and field in bad.get_json()["errors"]["query"], bad.get_json()


def test_it_accepts_an_import_as_a_pending_job(client, alice):
    response = client.post(f"{URL}/import", data="email,first_name\nada@example.com,Ada\nbob@example.com,Bob\n",
                           content_type="text/csv", headers=alice.headers)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["total"] == 2
    with db.session_scope() as s:
        job = s.get(Job, body["job_id"])
        assert job.account_id == alice.account_id and job.payload_format == "csv"
        assert job.payload.startswith(b"email,first_name")
    shown = client.get(f"/api/v1/jobs/{body['job_id']}", headers=alice.headers).get_json()
    assert shown["total"] == 2 and shown["kind"] == "subscriber_import"


@pytest.mark.parametrize("data, content_type, code, words", [
    ("", "text/csv", 422, "empty"),
    ("email\n", "text/csv", 422, "no subscriber rows"),
    ("name,city\nAda,London\n", "text/csv", 422, "email"),
    (b"email\n\xff\xfe@x.com\n", "text/csv", 422, "UTF-8"),
    ("[]", "application/json", 422, "no subscriber rows"),
    ('{"email": "a@example.com"}', "application/json", 422, "list"),
    ("[{", "application/json", 422, "JSON"),
    ("email\na@example.com", "text/plain", 415, "text/csv"),
])
def test_it_refuses_an_unusable_import_with_a_clear_4xx(client, alice, data, content_type, code, words):
    response = client.post(f"{URL}/import", data=data, content_type=content_type, headers=alice.headers)
    assert response.status_code == code, response.get_json()
    assert words in response.get_json()["message"]
    with db.session_scope() as s:
        assert s.scalars(select(Job)).all() == []


def test_it_refuses_imports_over_the_size_and_row_limits(client, alice, monkeypatch):
    import audience.payloads

    big = "email\n" + "a@example.com\n" * 4
    monkeypatch.setattr(audience.payloads, "MAX_ROWS", 3)
    rows = client.post(f"{URL}/import", data=big, content_type="text/csv", headers=alice.headers)
    assert rows.status_code == 413 and "at most 3" in rows.get_json()["message"]
    huge = b"email\n" + b"a" * (50 * 1024 * 1024 + 100_000) + b"@example.com\n"
    size = client.post(f"{URL}/import", data=huge, content_type="text/csv", headers=alice.headers)
    assert size.status_code == 413 and "50 MB" in size.get_json()["message"]


def test_it_takes_a_multipart_file_and_names_the_missing_field(client, alice):
    import io

    ok = client.post(f"{URL}/import", data={"file": (io.BytesIO(b'[{"email": "a@example.com"}]'), "people.json")},
                     content_type="multipart/form-data", headers=alice.headers)
    assert ok.status_code == 202, ok.get_json()
    with db.session_scope() as s:
        assert s.get(Job, ok.get_json()["job_id"]).payload_format == "json"
    missing = client.post(f"{URL}/import", data={"other": "x"}, content_type="multipart/form-data", headers=alice.headers)
    assert missing.status_code == 422 and "file" in missing.get_json()["errors"]["files"]


def test_it_hides_another_accounts_job_behind_404(client, alice, bob):
    job_id = client.post(f"{URL}/import", json=[{"email": "a@example.com"}], headers=bob.headers).get_json()["job_id"]
    assert client.get(f"/api/v1/jobs/{job_id}", headers=alice.headers).status_code == 404
    assert client.get(f"/api/v1/jobs/{job_id}", headers=bob.headers).status_code == 200
    assert client.get("/api/v1/jobs", headers=alice.headers).get_json() == []
