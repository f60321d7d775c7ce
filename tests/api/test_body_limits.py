"""Request bodies are capped per endpoint and an event's properties at 64 kB of JSON:
a client cannot make a web process hold, or the engine reload, megabytes it sent."""
from __future__ import annotations

import io
import json
from typing import Any

from sqlalchemy import func, select

from models import Event, Job, db
from tests.conftest import Tenant


def events_stored() -> int:
    with db.session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(Event)) or 0)


def test_event_properties_over_64_kb_of_json_are_a_422_naming_properties(client: Any, alice: Tenant) -> None:
    properties = {"blob": "x" * (64 * 1024)}
    response = client.post("/api/v1/events", json={"email": "a@example.test", "name": "big", "properties": properties},
                           headers=alice.headers)
    assert response.status_code == 422
    body = response.get_json()
    assert "properties" in body["errors"]["json"]
    assert "64 kB" in " ".join(body["errors"]["json"]["properties"])
    assert events_stored() == 0


def test_event_properties_just_under_64_kb_are_recorded(client: Any, alice: Tenant) -> None:
    properties = {"blob": "x" * (64 * 1024 - 20)}
    assert len(json.dumps(properties, separators=(",", ":"))) <= 64 * 1024
    response = client.post("/api/v1/events", json={"email": "a@example.test", "name": "big", "properties": properties},
                           headers=alice.headers)
    assert response.status_code == 202, response.get_json()
    assert events_stored() == 1


def test_multibyte_properties_are_measured_in_bytes_not_characters(client: Any, alice: Tenant) -> None:
    properties = {"blob": "é" * 40_000}  # 40,000 characters, 80,000 bytes
    response = client.post("/api/v1/events", json={"email": "a@example.test", "name": "big", "properties": properties},
                           headers=alice.headers)
    assert response.status_code == 422
    assert "properties" in response.get_json()["errors"]["json"]


def test_a_body_over_the_endpoints_limit_is_a_413_naming_the_limit_and_nothing_is_stored(client: Any,
                                                                                        alice: Tenant) -> None:
    payload = json.dumps({"email": "a@example.test", "name": "huge", "properties": {"blob": "x" * (2 * 1024 * 1024)}})
    response = client.post("/api/v1/events", data=payload, content_type="application/json", headers=alice.headers)
    assert response.status_code == 413
    body = response.get_json()
    assert body["code"] == 413 and "1,048,576 bytes" in body["message"] and "/api/v1/events" in body["message"]
    assert events_stored() == 0


def test_a_chunked_body_without_a_length_is_cut_off_at_the_limit_with_a_413(client: Any, alice: Tenant) -> None:
    payload = json.dumps({"email": "a@example.test", "name": "huge", "properties": {"blob": "x" * (2 * 1024 * 1024)}})
    response = client.post("/api/v1/events", input_stream=io.BytesIO(payload.encode()),
                           headers={**alice.headers, "Content-Type": "application/json",
                                    "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})  # as gunicorn sets for chunked
    assert response.status_code == 413
    assert "1,048,576 bytes" in response.get_json()["message"]
    assert events_stored() == 0


def test_a_template_of_two_megabytes_is_still_taken(client: Any, alice: Tenant) -> None:
    html = "<p>" + "é" * 499_000 + "</p>"  # near the 500,000-character cap, about 1 MB as UTF-8
    response = client.post("/api/v1/templates", json={"name": "long", "subject": "Hi", "html": html, "text": html},
                           headers=alice.headers)
    assert response.status_code == 201, response.get_json()


def test_an_import_over_one_megabyte_is_still_taken(client: Any, alice: Tenant) -> None:
    csv = "email\n" + "".join(f"user{i}@example.test\n" for i in range(60_000))
    assert len(csv) > 1024 * 1024
    response = client.post("/api/v1/subscribers/import", data=csv, content_type="text/csv", headers=alice.headers)
    assert response.status_code == 202, response.get_json()
    with db.session_scope() as s:
        assert s.get(Job, response.get_json()["job_id"]).total == 60_000


def test_a_provider_webhook_of_three_megabytes_is_judged_by_its_own_cap(client: Any) -> None:
    body = b"[" + b",".join([b'{"event":"delivered"}'] * 140_000) + b"]"
    assert 1024 * 1024 < len(body) < 5 * 1024 * 1024
    response = client.post("/webhooks/sendgrid", data=body, content_type="application/json")
    assert response.status_code == 401  # not configured here: refused for that, not for its size
