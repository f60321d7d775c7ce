"""``/api/v1/ai/drafts``: asking (202, or 422 naming the field), reading, listing and
applying drafts, with Alice and Bob never seeing each other's drafts or sequences.
The drafting itself is in tests/integration/test_ai_drafts.py and the e2e worker test."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from models import AiDraft, Sequence, db
from models.base import utcnow

STEPS = [{"type": "email", "subject": "Welcome", "html": "<p>Hello</p>"}, {"type": "delay", "seconds": 3600},
         {"type": "email", "subject": "Next", "text": "More"}]
BRIEF = {"goal": "onboard new sign-ups", "emails": 3}


@pytest.fixture
def with_model(app: Any) -> Iterator[None]:
    """The app as configured with a model server (nothing is called in these tests)."""
    before = app.config["ESEQ_SETTINGS"]
    app.config["ESEQ_SETTINGS"] = dataclasses.replace(before, openai_base_url="http://127.0.0.1:9/v1")
    yield
    app.config["ESEQ_SETTINGS"] = before


def _sequence(client, tenant, status: str = "draft") -> int:
    response = client.post("/api/v1/email-sequences", json={"name": "Welcome", "steps": STEPS}, headers=tenant.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _ready(account_id: int, kind: str, result: dict, sequence_id: int | None = None, step: int | None = None,
           version: int | None = 1, status: str = "ready") -> int:
    with db.session_scope() as s:
        row = AiDraft(account_id=account_id, kind=kind, status=status, request={}, sequence_id=sequence_id, step=step,
                      sequence_version=version, result=result, preflight={"passed": True}, model="gpt-test",
                      cached=False, prompt_tokens=10, completion_tokens=20, model_seconds=0.5, attempts=1,
                      due_at=utcnow(), created_at=utcnow())
        s.add(row)
        s.flush()
        return row.id


def test_a_sequence_draft_is_accepted_queued_and_readable(client, alice):
    response = client.post("/api/v1/ai/drafts", json={"kind": "sequence", "brief": BRIEF}, headers=alice.headers)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["status"] == "queued"
    draft = client.get(f"/api/v1/ai/drafts/{body['id']}", headers=alice.headers).get_json()
    assert (draft["kind"], draft["status"], draft["result"], draft["cached"]) == ("sequence", "queued", None, False)
    assert draft["request"]["brief"] == {"goal": "onboard new sign-ups", "emails": 3}
    assert draft["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "cost": None, "model_seconds": 0.0}
    listed = client.get("/api/v1/ai/drafts", headers=alice.headers)
    assert [d["id"] for d in listed.get_json()] == [body["id"]] and "X-Pagination" in listed.headers


def test_bad_draft_requests_are_422_naming_the_field_and_store_nothing(client, alice, with_model):
    seq = _sequence(client, alice)
    cases = [
        ({}, "kind"), ({"kind": "poem"}, "kind"),
        ({"kind": "sequence"}, "brief"), ({"kind": "sequence", "brief": {}}, "brief.goal"),
        ({"kind": "sequence", "brief": {**BRIEF, "emails": 2}}, "brief.emails"),
        ({"kind": "sequence", "brief": {**BRIEF, "emails": 11}}, "brief.emails"),
        ({"kind": "sequence", "brief": {**BRIEF, "emails": "five"}}, "brief.emails"),
        ({"kind": "sequence", "brief": {**BRIEF, "budget": 1}}, "brief.budget"),
        ({"kind": "sequence", "brief": "write me emails"}, "brief"),
        ({"kind": "sequence", "brief": {**BRIEF, "url": "ftp://example.com"}}, "brief.url"),
        ({"kind": "sequence", "brief": {**BRIEF, "url": "http://[bad"}}, "brief.url"),
        ({"kind": "sequence", "brief": {**BRIEF, "url": "http://10.0.0.1/"}}, "brief.url"),
        ({"kind": "sequence", "brief": BRIEF, "step": 0}, "step"),
        ({"kind": "subject_lines", "step": 0}, "sequence_id"),
        ({"kind": "subject_lines", "sequence_id": seq}, "step"),
        ({"kind": "subject_lines", "sequence_id": seq, "step": 1}, "step"),  # a delay
        ({"kind": "subject_lines", "sequence_id": seq, "step": 9}, "step"),
        ({"kind": "subject_lines", "sequence_id": seq, "step": 0, "count": 0}, "count"),
        ({"kind": "subject_lines", "sequence_id": seq, "step": 0, "count": 11}, "count"),
        ({"kind": "rewrite", "sequence_id": seq, "step": 0}, "brief"),
        ({"kind": "rewrite", "sequence_id": seq, "step": 0, "brief": {"language": "fr"}}, "brief"),
        ({"kind": "fix", "sequence_id": seq, "step": 0, "count": 3}, "count"),
        ({"kind": "sequence", "brief": BRIEF, "bogus": 1}, "bogus"),
    ]
    for body, field in cases:
        response = client.post("/api/v1/ai/drafts", json=body, headers=alice.headers)
        assert response.status_code == 422, (body, response.get_json())
        assert field in response.get_json()["errors"]["json"], (body, response.get_json())
    with db.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(AiDraft)) == 0


def test_without_a_model_server_only_sequences_are_drafted(client, alice):
    seq = _sequence(client, alice)
    response = client.post("/api/v1/ai/drafts", json={"kind": "subject_lines", "sequence_id": seq, "step": 0},
                           headers=alice.headers)
    assert response.status_code == 422
    assert "needs a model server" in response.get_json()["errors"]["json"]["kind"][0]
    response = client.post("/api/v1/ai/drafts", json={"kind": "sequence", "brief": BRIEF}, headers=alice.headers)
    assert response.status_code == 202


def test_another_accounts_sequence_and_drafts_are_not_found(client, alice, bob, with_model):
    bobs_sequence = _sequence(client, bob)
    response = client.post("/api/v1/ai/drafts", json={"kind": "fix", "sequence_id": bobs_sequence, "step": 0},
                           headers=alice.headers)
    assert response.status_code == 404
    bobs = _ready(bob.account_id, "sequence", {"sequence": {"name": "B", "steps": STEPS}})
    assert client.get(f"/api/v1/ai/drafts/{bobs}", headers=alice.headers).status_code == 404
    assert client.post(f"/api/v1/ai/drafts/{bobs}/apply", headers=alice.headers).status_code == 404
    assert client.get("/api/v1/ai/drafts", headers=alice.headers).get_json() == []
    assert client.get(f"/api/v1/ai/drafts/{bobs}", headers=bob.headers).status_code == 200
    assert client.get("/api/v1/ai/drafts/99999999999", headers=alice.headers).status_code == 404


def test_applying_a_sequence_draft_creates_a_draft_sequence_once(client, alice):
    draft_id = _ready(alice.account_id, "sequence", {"sequence": {"name": "Drafted", "description": None,
                                                                  "steps": STEPS}})
    response = client.post(f"/api/v1/ai/drafts/{draft_id}/apply", headers=alice.headers)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "draft" and body["step"] is None
    sequence = client.get(f"/api/v1/email-sequences/{body['sequence_id']}", headers=alice.headers).get_json()
    assert (sequence["name"], sequence["status"], len(sequence["steps"])) == ("Drafted", "draft", 3)
    again = client.post(f"/api/v1/ai/drafts/{draft_id}/apply", headers=alice.headers)
    assert again.status_code == 409
    draft = client.get(f"/api/v1/ai/drafts/{draft_id}", headers=alice.headers).get_json()
    assert draft["applied"] == {"sequence_id": body["sequence_id"], "step": None} and draft["applied_at"]
    with db.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Sequence)) == 1


def test_a_draft_not_ready_cannot_be_applied(client, alice):
    for status in ("queued", "running", "failed"):
        draft_id = _ready(alice.account_id, "sequence", None, status=status)
        response = client.post(f"/api/v1/ai/drafts/{draft_id}/apply", headers=alice.headers)
        assert response.status_code == 409 and status in response.get_json()["message"]


def test_subject_lines_are_added_to_the_step_as_variants(client, alice):
    seq = _sequence(client, alice)
    draft_id = _ready(alice.account_id, "subject_lines", {"step": 2, "subject_lines": ["One", "Two"]}, seq, 2)
    response = client.post(f"/api/v1/ai/drafts/{draft_id}/apply", headers=alice.headers)
    assert response.status_code == 201, response.get_json()
    steps = client.get(f"/api/v1/email-sequences/{seq}", headers=alice.headers).get_json()["steps"]
    assert steps[2]["variants"] == [{"name": "A", "subject": "One", "weight": 1},
                                    {"name": "B", "subject": "Two", "weight": 1}]
    assert steps[0].get("variants") is None


def test_a_step_draft_of_a_sequence_changed_since_is_refused(client, alice):
    seq = _sequence(client, alice)
    draft_id = _ready(alice.account_id, "rewrite", {"step": 0, "email": {"subject": "New", "html": "<p>x</p>"}},
                      seq, 0)
    put = client.put(f"/api/v1/email-sequences/{seq}", json={"name": "Edited", "steps": STEPS}, headers=alice.headers)
    assert put.status_code == 200, put.get_json()
    response = client.post(f"/api/v1/ai/drafts/{draft_id}/apply", headers=alice.headers)
    assert response.status_code == 409 and "changed since" in response.get_json()["message"]
    steps = client.get(f"/api/v1/email-sequences/{seq}", headers=alice.headers).get_json()["steps"]
    assert steps[0]["subject"] == "Welcome"


def test_a_blueprint_draft_reads_ready_with_its_preflight_and_applies_as_a_draft_sequence(client, alice):
    from ai import drafts
    from ai.budget import Prices
    from tasks.ai import check

    draft_id = client.post("/api/v1/ai/drafts", json={"kind": "sequence", "brief": {**BRIEF, "goal": "win back"}},
                           headers=alice.headers).get_json()["id"]
    with db.session_scope() as s:  # what the ai task does, with no model server configured
        job = drafts.start(s, draft_id, utcnow(), model=None, daily_tokens=0)
    outcome = drafts.compose(job, None, check)
    with db.session_scope() as s:
        drafts.finish(s, job, outcome, utcnow(), Prices())
    draft = client.get(f"/api/v1/ai/drafts/{draft_id}", headers=alice.headers).get_json()
    assert (draft["status"], draft["model"], draft["error"]) == ("ready", "blueprint", None)
    assert draft["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "cost": None, "model_seconds": 0.0}
    assert draft["preflight"]["emails"] and "passed" in draft["preflight"]
    assert sum(1 for s in draft["result"]["sequence"]["steps"] if s["type"] == "email") == 3
    applied = client.post(f"/api/v1/ai/drafts/{draft_id}/apply", headers=alice.headers)
    assert applied.status_code == 201, applied.get_json()
    sequence = client.get(f"/api/v1/email-sequences/{applied.get_json()['sequence_id']}", headers=alice.headers)
    assert sequence.get_json()["status"] == "draft"
    assert [s["type"] for s in sequence.get_json()["steps"]] == ["email", "delay", "email", "delay", "email"]
