"""The AI drafts page: a brief asks for a draft (queued on the ai pool, the API's
own path), the page follows it until it is written (run here as the ai task runs
it, against the fake chat-completions server), the review shows each drafted step
with its HTML only inside a sandboxed iframe and the pre-flight report, and apply
creates the sequence once. Errors name the brief's fields; nothing of another
account shows."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from ai import drafts
from ai.budget import Prices
from ai.client import ChatClient
from models import AiDraft, Sequence, db
from models.base import utcnow
from tasks.ai import check
from tests.support import ai_answers
from tests.support.console import sign_in
from tests.support.db_fixtures import Tenant
from tests.support.fake_openai import FakeOpenAI

MODEL = "gpt-test"
BRIEF = {"kind": "sequence", "brief.goal": "onboard new sign-ups", "brief.audience": "small bakeries",
         "brief.emails": "3"}
STEPS = [{"type": "email", "subject": "Welcome", "html": "<p>Hello</p>"}, {"type": "delay", "seconds": 3600},
         {"type": "email", "subject": "Next", "text": "More"}]


@pytest.fixture
def fake(app: Any) -> Iterator[FakeOpenAI]:
    """A model server the app is configured with, answering as a well-behaved model would."""
    with FakeOpenAI(answerer=ai_answers.good) as server:
        before = app.config["ESEQ_SETTINGS"]
        app.config["ESEQ_SETTINGS"] = dataclasses.replace(before, openai_base_url=server.base_url)
        yield server
        app.config["ESEQ_SETTINGS"] = before


def _run_on_the_ai_pool(draft_id: int, fake: FakeOpenAI) -> None:
    """What tasks.ai.draft does with the draft, minus Celery."""
    client = ChatClient(base_url=fake.base_url, api_key=fake.api_key, model=MODEL, timeout=5.0, max_attempts=1)
    with db.session_scope() as s:
        job = drafts.start(s, draft_id, utcnow(), model=MODEL, daily_tokens=0)
    assert job is not None
    outcome = drafts.compose(job, client, check)
    with db.session_scope() as s:
        drafts.finish(s, job, outcome, utcnow(), Prices())


def _ready(account_id: int, result: dict[str, Any] | None, status: str = "ready",
           preflight: dict[str, Any] | None = None, kind: str = "sequence", sequence_id: int | None = None,
           step: int | None = None) -> int:
    with db.session_scope() as s:
        row = AiDraft(account_id=account_id, kind=kind, status=status, request={"brief": {"goal": "x"}},
                      sequence_id=sequence_id, step=step, sequence_version=1 if sequence_id else None,
                      result=result, preflight=preflight or {"passed": True, "score": 0.0, "fail_score": 5.0,
                                                             "emails": [], "problems": [], "notices": []},
                      model=MODEL, cached=False, prompt_tokens=10, completion_tokens=20, model_seconds=0.5,
                      attempts=1, due_at=utcnow(), created_at=utcnow())
        s.add(row)
        s.flush()
        return row.id


def _count(model: Any) -> int:
    with db.session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _form(**fields: str) -> dict[str, str]:
    names = ("kind", "brief.goal", "brief.audience", "brief.product", "brief.tone", "brief.emails", "brief.language",
             "brief.sender_name", "brief.url", "brief.length", "brief.segment", "sequence_id", "step", "count")
    return {name: fields.get(name, "") for name in names}


def test_a_brief_is_drafted_on_the_ai_pool_reviewed_and_applied_once(client: Any, alice: Tenant,
                                                                    fake: FakeOpenAI) -> None:
    token = sign_in(client, alice.api_key)
    asked = client.post("/console/drafts", data={**_form(**BRIEF), "csrf_token": token})
    assert asked.status_code == 303, asked.get_data(as_text=True)
    draft_id = int(asked.headers["Location"].rsplit("/", 1)[1])
    api = client.get(f"/api/v1/ai/drafts/{draft_id}", headers=alice.headers).get_json()
    assert api["status"] == "queued"
    assert api["request"]["brief"] == {"goal": "onboard new sign-ups", "audience": "small bakeries", "emails": 3}

    pending = client.get(f"/console/drafts/{draft_id}").get_data(as_text=True)
    assert f'data-draft-status="/console/drafts/{draft_id}/status"' in pending and "drafts.js" in pending
    assert client.get(f"/console/drafts/{draft_id}/status").get_json() == {"id": draft_id, "status": "queued",
                                                                          "pending": True}
    _run_on_the_ai_pool(draft_id, fake)
    assert client.get(f"/console/drafts/{draft_id}/status").get_json()["status"] == "ready"

    page = client.get(f"/console/drafts/{draft_id}").get_data(as_text=True)
    assert "data-draft-status" not in page and "drafts.js" not in page
    assert page.count('<iframe class="email-preview" sandbox srcdoc="') == 3
    assert "Getting started, part 2" in page and "Step 1: delay" in page
    assert "&lt;p&gt;Hi Alex,&lt;/p&gt;" in page  # as a sample reader gets it
    assert "<p>Part 1 of how" not in page  # the email's HTML only escaped, in srcdoc
    assert "the pre-flight" in page and "Apply this draft" in page

    applied = client.post(f"/console/drafts/{draft_id}/apply", data={"csrf_token": token})
    assert applied.status_code == 303
    with db.session_scope() as s:
        sequence = s.scalars(select(Sequence).where(Sequence.account_id == alice.account_id)).one()
        assert (sequence.name, sequence.status, len(sequence.steps)) == ("Welcome to Acme", "draft", 5)
    after = client.get(f"/console/drafts/{draft_id}").get_data(as_text=True)
    assert f"sequence {sequence.id} is created in status draft" in after and "Apply this draft" not in after
    again = client.post(f"/console/drafts/{draft_id}/apply", data={"csrf_token": token}, follow_redirects=True)
    assert "was applied already" in again.get_data(as_text=True)
    assert _count(Sequence) == 1


def test_drafted_html_never_reaches_the_page_itself(client: Any, alice: Tenant) -> None:
    evil = '<p>Hi</p><script>alert("x")</script><img src=x onerror="alert(1)">"</iframe><b>out</b>'
    draft_id = _ready(alice.account_id, {"sequence": {"name": "S", "steps": [
        {"type": "email", "subject": "<b>bold</b>", "html": evil}]}, "notes": []})
    sign_in(client, alice.api_key)
    html = client.get(f"/console/drafts/{draft_id}").get_data(as_text=True)
    assert "<script>alert" not in html and "onerror=\"alert" not in html and "<b>out</b>" not in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert 'sandbox srcdoc="&lt;p&gt;Hi&lt;/p&gt;&lt;script&gt;' in html


def test_the_preflight_report_shows_by_the_step_it_judges(client: Any, alice: Tenant) -> None:
    report = {"passed": False, "score": 6.2, "fail_score": 5.0, "problems": ["From domain does not align"],
              "notices": [], "emails": [{"position": 2, "variant": None, "score": 6.2, "passed": False,
                                         "reasons": ["ALL CAPS subject"], "notices": []}]}
    draft_id = _ready(alice.account_id, {"sequence": {"name": "S", "steps": STEPS}, "notes": []}, preflight=report)
    sign_in(client, alice.api_key)
    html = client.get(f"/console/drafts/{draft_id}").get_data(as_text=True)
    assert "fails the pre-flight" in html and "From domain does not align" in html
    step_two = html.split('id="step-2"', 1)[1]
    assert "ALL CAPS subject" in step_two and "ALL CAPS subject" not in html.split('id="step-2"', 1)[0]


def test_step_drafts_show_what_changes_and_apply_to_the_step(client: Any, alice: Tenant) -> None:
    seq = client.post("/api/v1/email-sequences", json={"name": "S", "steps": STEPS}, headers=alice.headers)
    seq_id = seq.get_json()["id"]
    rewrite = _ready(alice.account_id, {"step": 0, "email": {"subject": "Calmer {{ subscriber.first_name }}",
                                                             "html": "<p>Hello {{ subscriber.first_name }}</p>"},
                                        "notes": ["shorter"]}, kind="rewrite", sequence_id=seq_id, step=0)
    lines = _ready(alice.account_id, {"step": 2, "subject_lines": ["One", "Two"]}, kind="subject_lines",
                   sequence_id=seq_id, step=2)
    token = sign_in(client, alice.api_key)
    page = client.get(f"/console/drafts/{rewrite}").get_data(as_text=True)
    assert f"step 0 of sequence {seq_id}" in page and "shorter" in page
    assert "Calmer {{ subscriber.first_name }}" in page and "Calmer Alex" in page  # as written, and as read
    assert 'srcdoc="&lt;p&gt;Hello Alex&lt;/p&gt;"' in page
    assert client.post(f"/console/drafts/{rewrite}/apply", data={"csrf_token": token}).status_code == 303
    steps = client.get(f"/api/v1/email-sequences/{seq_id}", headers=alice.headers).get_json()["steps"]
    assert steps[0]["subject"] == "Calmer {{ subscriber.first_name }}"
    listed = client.get(f"/console/drafts/{lines}").get_data(as_text=True)
    assert "<li>One</li>" in listed and "<li>Two</li>" in listed
    refused = client.post(f"/console/drafts/{lines}/apply", data={"csrf_token": token}, follow_redirects=True)
    assert "changed since the draft was made" in refused.get_data(as_text=True)  # the rewrite made version 2
    steps = client.get(f"/api/v1/email-sequences/{seq_id}", headers=alice.headers).get_json()["steps"]
    assert steps[2].get("variants") is None


def test_bad_briefs_name_the_field_and_store_nothing(client: Any, alice: Tenant, bob: Tenant,
                                                     fake: FakeOpenAI) -> None:
    bobs = client.post("/api/v1/email-sequences", json={"name": "B", "steps": STEPS}, headers=bob.headers)
    token = sign_in(client, alice.api_key)
    cases = [({"kind": "sequence"}, "brief", "Missing data for required field."),
             ({"kind": "sequence", "brief.audience": "bakers"}, "brief.goal", "Missing data for required field."),
             ({**BRIEF, "brief.emails": "2"}, "brief.emails", ""),
             ({**BRIEF, "brief.emails": "five"}, "brief.emails", ""),
             ({**BRIEF, "brief.url": "ftp://example.com"}, "brief.url", "Must be an http or https URL"),
             ({**BRIEF, "brief.length": "shorter"}, "brief.length", "Unknown field."),
             ({**BRIEF, "step": "0"}, "step", "Not used by kind sequence."),
             ({"kind": "subject_lines", "step": "0"}, "sequence_id", ""),
             ({"kind": "poem"}, "kind", "Must be one of"),
             ({"kind": "fix", "sequence_id": str(bobs.get_json()["id"]), "step": "0"}, "sequence_id",
              "No such sequence in this account.")]
    for fields, field, message in cases:
        response = client.post("/console/drafts", data={**_form(**fields), "csrf_token": token})
        html = response.get_data(as_text=True)
        assert response.status_code in (404, 422), (fields, html)
        assert f'id="e-{field}">' in html, (fields, field, html)
        assert message in html.split(f'id="e-{field}">', 1)[1].split("</p>", 1)[0], (fields, html)
    assert _count(AiDraft) == 0


def test_without_a_model_server_only_whole_sequences_are_drafted(client: Any, alice: Tenant) -> None:
    seq = client.post("/api/v1/email-sequences", json={"name": "S", "steps": STEPS}, headers=alice.headers)
    token = sign_in(client, alice.api_key)
    form = client.get("/console/drafts/new").get_data(as_text=True)
    assert "No model server is configured" in form
    response = client.post("/console/drafts", data={**_form(kind="rewrite", **{"brief.tone": "calmer"}),
                                                    "sequence_id": str(seq.get_json()["id"]), "step": "0",
                                                    "csrf_token": token})
    assert response.status_code == 422 and "needs a model server" in response.get_data(as_text=True)
    assert _count(AiDraft) == 0


def test_a_draft_not_ready_is_not_applied(client: Any, alice: Tenant) -> None:
    token = sign_in(client, alice.api_key)
    for status in ("queued", "running", "failed"):
        draft_id = _ready(alice.account_id, None, status=status)
        page = client.get(f"/console/drafts/{draft_id}").get_data(as_text=True)
        assert "Apply this draft" not in page
        if status == "queued":  # queued again after an attempt: waiting out the model server's Retry-After
            assert "attempt 2 is due at" in page and "data-draft-status" in page
        response = client.post(f"/console/drafts/{draft_id}/apply", data={"csrf_token": token},
                               follow_redirects=True)
        assert f"Not applied: Draft {draft_id} is {status}" in response.get_data(as_text=True)
    assert _count(Sequence) == 0


def test_the_list_pages_filters_and_says_what_to_do_when_empty(client: Any, alice: Tenant) -> None:
    sign_in(client, alice.api_key)
    assert "No drafts yet" in client.get("/console/drafts").get_data(as_text=True)
    ready = _ready(alice.account_id, {"sequence": {"name": "S", "steps": STEPS}, "notes": []})
    failed = _ready(alice.account_id, None, status="failed")
    listing = client.get("/console/drafts").get_data(as_text=True)
    assert f"/console/drafts/{ready}" in listing and f"/console/drafts/{failed}" in listing
    only_failed = client.get("/console/drafts?status=failed").get_data(as_text=True)
    assert f"/console/drafts/{failed}" in only_failed and f"/console/drafts/{ready}\"" not in only_failed
    bad = client.get("/console/drafts?status=bogus").get_data(as_text=True)
    assert "Filter ignored: status" in bad and f"/console/drafts/{ready}" in bad


def test_another_accounts_draft_is_not_found(client: Any, alice: Tenant, bob: Tenant) -> None:
    bobs = _ready(bob.account_id, {"sequence": {"name": "B", "steps": STEPS}, "notes": []})
    token = sign_in(client, alice.api_key)
    assert client.get(f"/console/drafts/{bobs}").status_code == 404
    assert client.get(f"/console/drafts/{bobs}/status").status_code == 404
    assert client.post(f"/console/drafts/{bobs}/apply", data={"csrf_token": token}).status_code == 404
    assert f"/console/drafts/{bobs}" not in client.get("/console/drafts").get_data(as_text=True)
    assert _count(Sequence) == 0


def test_a_post_without_the_csrf_token_is_refused(client: Any, alice: Tenant) -> None:
    draft_id = _ready(alice.account_id, {"sequence": {"name": "S", "steps": STEPS}, "notes": []})
    sign_in(client, alice.api_key)
    assert client.post(f"/console/drafts/{draft_id}/apply").status_code == 400
    assert client.post("/console/drafts", data=_form(**BRIEF)).status_code == 400
    assert _count(Sequence) == 0 and _count(AiDraft) == 1


def test_asking_again_fills_the_form_with_an_earlier_brief_of_the_account_only(client: Any, alice: Tenant,
                                                                            bob: Tenant) -> None:
    with db.session_scope() as s:
        row = AiDraft(account_id=alice.account_id, kind="sequence", status="failed", error="the model was down",
                      request={"brief": {"goal": "win back lapsed buyers", "emails": 4}}, due_at=utcnow(),
                      created_at=utcnow())
        s.add(row)
        s.flush()
        failed = row.id
    bobs = _ready(bob.account_id, {"sequence": {"name": "B", "steps": STEPS}, "notes": []})
    sign_in(client, alice.api_key)
    page = client.get(f"/console/drafts/{failed}").get_data(as_text=True)
    assert "The draft failed: the model was down" in page and f"/console/drafts/new?again={failed}" in page
    form = client.get(f"/console/drafts/new?again={failed}").get_data(as_text=True)
    assert ">win back lapsed buyers</textarea>" in form and 'name="brief.emails" type="text" value="4"' in form
    assert client.get(f"/console/drafts/new?again={bobs}").status_code == 404
