"""The sequences pages: the list, a sequence's page with its funnel and experiments,
activate / pause / resume (with the pre-flight report when refused), and the step
editor with the API's validation messages beside the step they name."""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from models import Enrollment, Sequence, SequenceRollup, Step, db, utcnow
from tests.support.console import sign_in
from tests.support.db_fixtures import Tenant

WELCOME = [{"type": "email", "subject": "Welcome", "html": "<p>Hello there, glad you joined.</p>", "text": "Hello"},
           {"type": "delay", "days": 1},
           {"type": "email", "subject": "Day two", "html": "<p>Here is more.</p>", "text": "More"}]


def api_sequence(client: Any, tenant: Tenant, steps: list[dict[str, Any]] | None = None, name: str = "Welcome"
                 ) -> dict[str, Any]:
    response = client.post("/api/v1/email-sequences", json={"name": name, "steps": steps or WELCOME},
                           headers={"X-API-Key": tenant.api_key})
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def editor_form(token: str, name: str, steps: list[dict[str, str]], op: str = "save", **extra: str) -> dict[str, str]:
    """The editor's fields as a browser posts them."""
    form = {"csrf_token": token, "name": name, "description": "", "settings": "", "step_count": str(len(steps)),
            "op": op, **extra}
    for i, step in enumerate(steps):
        form.update({f"steps-{i}-{key}": value for key, value in step.items()})
    return form


def test_the_list_shows_the_accounts_sequences_with_counts_and_pages(client: Any, alice: Tenant, bob: Tenant) -> None:
    first = api_sequence(client, alice, name="Onboarding")
    api_sequence(client, bob, name="Bobs secret drip")
    client.post("/api/v1/email-sequences/%d/activate" % first["id"], json={"override_preflight": True},
                headers={"X-API-Key": alice.api_key})
    client.post(f"/api/v1/email-sequences/{first['id']}/subscribers", json={"emails": ["a@x.test", "b@x.test"]},
                headers={"X-API-Key": alice.api_key})
    sign_in(client, alice.api_key)
    html = client.get("/console/sequences").get_data(as_text=True)
    assert "Onboarding" in html and "Bobs secret drip" not in html
    row = re.search(r"Onboarding</a></td>(.*?)</tr>", html, re.S).group(1)
    assert "active" in row and re.findall(r'class="num">([\d,]+)<', row)[:2] == ["3", "2"]
    assert "Onboarding" not in client.get("/console/sequences?status=draft").get_data(as_text=True)
    for i in range(55):
        api_sequence(client, alice, name=f"Many {i}")
    page_one = client.get("/console/sequences").get_data(as_text=True)
    assert "Page 1 of 2 (56 in all)" in page_one and "Onboarding" not in page_one
    assert "Onboarding" in client.get("/console/sequences?page=2").get_data(as_text=True)


def test_an_empty_list_says_what_to_do(client: Any, alice: Tenant) -> None:
    sign_in(client, alice.api_key)
    html = client.get("/console/sequences").get_data(as_text=True)
    assert "No sequences yet" in html and 'href="/console/sequences/new"' in html


def test_a_sequence_page_shows_steps_funnel_and_results(client: Any, alice: Tenant) -> None:
    sequence = api_sequence(client, alice)
    headers = {"X-API-Key": alice.api_key}
    client.post(f"/api/v1/email-sequences/{sequence['id']}/activate", json={"override_preflight": True},
                headers=headers)
    client.post(f"/api/v1/email-sequences/{sequence['id']}/subscribers", json={"emails": ["a@x.test"]},
                headers=headers)
    sign_in(client, alice.api_key)
    html = client.get(f"/console/sequences/{sequence['id']}").get_data(as_text=True)
    funnel = client.get(f"/api/v1/email-sequences/{sequence['id']}/funnel", headers=headers).get_json()
    entered = funnel["steps"][0]["entered"]
    assert entered == 1
    assert re.search(r'<tr data-step="0">.*?class="num entered">1<', html, re.S)
    assert '<div class="chart" id="funnel-chart"><svg' in html  # the chart, inline
    assert "Day two" in html and "&#34;days&#34;: 1" in html
    assert 'data-status="active">1<' in html


def test_another_accounts_sequence_is_not_found(client: Any, alice: Tenant, bob: Tenant) -> None:
    theirs = api_sequence(client, bob)
    token = sign_in(client, alice.api_key)
    for path in (f"/console/sequences/{theirs['id']}", f"/console/sequences/{theirs['id']}/edit",
                 "/console/sequences/99999999999"):
        response = client.get(path)
        assert response.status_code == 404 and "Welcome" not in response.get_data(as_text=True)
    assert client.post(f"/console/sequences/{theirs['id']}/activate", data={"csrf_token": token}).status_code == 404
    response = client.post(f"/console/sequences/{theirs['id']}/edit",
                           data=editor_form(token, "Hijacked", [{"type": "email", "subject": "x", "html": "y"}]))
    assert response.status_code == 404
    with db.session_scope() as s:
        assert s.get(Sequence, theirs["id"]).status == "draft"
        assert s.get(Sequence, theirs["id"]).name == "Welcome"


def test_activate_pause_and_resume(client: Any, alice: Tenant) -> None:
    sequence = api_sequence(client, alice)
    token = sign_in(client, alice.api_key)
    base = f"/console/sequences/{sequence['id']}"

    def status() -> str:
        return str(client.get(f"/api/v1/email-sequences/{sequence['id']}",
                              headers={"X-API-Key": alice.api_key}).get_json()["status"])

    response = client.post(f"{base}/activate", data={"csrf_token": token})
    assert response.status_code == 302 and status() == "active"
    assert "Activated." in client.get(base).get_data(as_text=True)
    assert client.post(f"{base}/pause", data={"csrf_token": token}).status_code == 302 and status() == "paused"
    response = client.post(f"{base}/pause", data={"csrf_token": token}, follow_redirects=True)
    assert "Cannot pause a sequence that is paused." in response.get_data(as_text=True) and status() == "paused"
    client.post(f"{base}/resume", data={"csrf_token": token})
    assert status() == "active"
    assert client.post(f"{base}/explode", data={"csrf_token": token}).status_code == 404


def test_a_refused_activation_shows_the_preflight_report(client: Any, alice: Tenant) -> None:
    spam = [{"type": "email", "subject": "FREE!!! WIN CASH NOW $$$ 100% FREE VIAGRA",
             "html": "<p>CLICK HERE NOW!!! FREE MONEY!!! ACT NOW!!! Risk free, no credit check, cash bonus. "
                     '<a href="http://192.168.0.1/win">http://paypal.com</a></p>'}]
    sequence = api_sequence(client, alice, spam)
    token = sign_in(client, alice.api_key)
    api = client.get(f"/api/v1/email-sequences/{sequence['id']}/preflight", headers={"X-API-Key": alice.api_key})
    report = api.get_json()
    response = client.post(f"/console/sequences/{sequence['id']}/activate", data={"csrf_token": token})
    html = response.get_data(as_text=True)
    assert not report["passed"]  # the content rules alone fail it, with or without spamd
    assert response.status_code == 422
    assert "Pre-flight check" in html and "failed" in html and "anyway" in html
    for reason in [r for e in report["emails"] for r in e["reasons"]][:3]:
        assert str(reason).replace("'", "&#39;").replace('"', "&#34;") in html
    with db.session_scope() as s:
        assert s.get(Sequence, sequence["id"]).status == "draft"
    response = client.post(f"/console/sequences/{sequence['id']}/activate",
                           data={"csrf_token": token, "override_preflight": "1"})
    assert response.status_code == 302
    with db.session_scope() as s:
        assert s.get(Sequence, sequence["id"]).status == "active"


def test_the_editor_creates_a_sequence_through_the_api_rules(client: Any, alice: Tenant) -> None:
    token = sign_in(client, alice.api_key)
    assert client.get("/console/sequences/new").status_code == 200
    response = client.post("/console/sequences/new", data=editor_form(token, "From the console", [
        {"type": "email", "subject": "Hi {{ first_name }}", "html": "<p>Hello</p>", "text": "", "extra": "{}"},
        {"type": "delay", "extra": '{"hours": 2}'},
        {"type": "condition", "extra": '{"condition": {"type": "opened"}, "else_goto": "exit"}'},
        {"type": "action", "extra": '{"action": "add_tag", "tag": "opened"}'},
        {"type": "webhook", "extra": '{"url": "https://hooks.example.com/x", "payload": {"a": 1}}'},
    ]))
    assert response.status_code == 302, response.get_data(as_text=True)
    sequence_id = int(response.headers["Location"].rsplit("/", 1)[1])
    body = client.get(f"/api/v1/email-sequences/{sequence_id}", headers={"X-API-Key": alice.api_key}).get_json()
    assert body["status"] == "draft" and body["name"] == "From the console"
    assert [s["type"] for s in body["steps"]] == ["email", "delay", "condition", "action", "webhook"]
    assert body["steps"][0]["subject"] == "Hi {{ first_name }}" and "text" not in body["steps"][0]
    assert body["steps"][1]["hours"] == 2 and body["steps"][4]["payload"] == {"a": 1}


def test_each_error_shows_beside_its_step_and_nothing_is_written(client: Any, alice: Tenant) -> None:
    token = sign_in(client, alice.api_key)
    response = client.post("/console/sequences/new", data=editor_form(token, "", [
        {"type": "email", "subject": "Fine", "html": "<p>ok</p>", "extra": "{}"},
        {"type": "delay", "extra": '{"days": -1}'},
        {"type": "email", "subject": "", "html": "<p>no subject</p>", "extra": "{}"},
        {"type": "condition", "extra": '{"condition": {"type": "smelled"}, "else_goto": 9}'},
    ]))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    # marshmallow's name error first: the schema runs before the steps are judged
    assert re.search(r'id="e-name">Missing data|id="e-name">Shorter than|id="e-name">[^<]*(empty|Length)', html), html
    with db.session_scope() as s:
        assert s.scalar(select(Sequence.id).where(Sequence.account_id == alice.account_id)) is None
    response = client.post("/console/sequences/new", data=editor_form(token, "Named", [
        {"type": "email", "subject": "Fine", "html": "<p>ok</p>", "extra": "{}"},
        {"type": "delay", "extra": '{"days": -1}'},
        {"type": "email", "subject": "", "html": "<p>no subject</p>", "extra": "{}"},
        {"type": "condition", "extra": '{"condition": {"type": "smelled"}, "else_goto": 9}'},
        {"type": "goto", "extra": "{not json"},
    ]))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'id="e-steps-4-extra">Not valid JSON', html)
    fixed = editor_form(token, "Named", [
        {"type": "email", "subject": "Fine", "html": "<p>ok</p>", "extra": "{}"},
        {"type": "delay", "extra": '{"days": -1}'},
        {"type": "email", "subject": "", "html": "<p>no subject</p>", "extra": "{}"},
        {"type": "condition", "extra": '{"condition": {"type": "smelled"}, "else_goto": 9}'},
    ])
    html = client.post("/console/sequences/new", data=fixed).get_data(as_text=True)
    api = client.post("/api/v1/email-sequences", headers={"X-API-Key": alice.api_key}, json={"name": "Named", "steps": [
        {"type": "email", "subject": "Fine", "html": "<p>ok</p>"}, {"type": "delay", "days": -1},
        {"type": "email", "html": "<p>no subject</p>"},
        {"type": "condition", "condition": {"type": "smelled"}, "else_goto": 9}]}).get_json()["errors"]["json"]
    assert set(api) >= {"steps.1.days", "steps.2.subject", "steps.3.condition.type"}
    assert re.search(r'id="e-steps-1-extra">days: ' + re.escape(api["steps.1.days"][0]), html)
    assert re.search(r'id="e-steps-2-subject">' + re.escape(api["steps.2.subject"][0]), html)
    assert re.search(r'id="e-steps-3-extra">condition.type: ' + re.escape(api["steps.3.condition.type"][0]), html)
    assert 'id="e-steps-0' not in html  # the good step carries no error
    assert 'value="Fine"' in html  # what was typed is kept
    with db.session_scope() as s:
        assert s.scalar(select(Sequence.id).where(Sequence.account_id == alice.account_id)) is None


def test_add_remove_and_move_steps_save_nothing(client: Any, alice: Tenant) -> None:
    token = sign_in(client, alice.api_key)
    steps = [{"type": "email", "subject": "One", "html": "<p>1</p>", "extra": "{}"},
             {"type": "delay", "extra": '{"days": 2}'}]
    html = client.post("/console/sequences/new", data=editor_form(token, "N", steps, op="add", add_type="webhook")
                       ).get_data(as_text=True)
    assert 'name="step_count" value="3"' in html and "Position 2 · webhook" in html
    html = client.post("/console/sequences/new", data=editor_form(token, "N", steps, op="up:1")).get_data(as_text=True)
    assert html.index("Position 0 · delay") < html.index("Position 1 · email")
    html = client.post("/console/sequences/new", data=editor_form(token, "N", steps, op="remove:0")
                       ).get_data(as_text=True)
    assert 'name="step_count" value="1"' in html and "Position 0 · delay" in html
    with db.session_scope() as s:
        assert s.scalar(select(Sequence.id).where(Sequence.account_id == alice.account_id)) is None


def test_editing_replaces_the_steps_as_put_does(client: Any, alice: Tenant) -> None:
    sequence = api_sequence(client, alice)
    token = sign_in(client, alice.api_key)
    html = client.get(f"/console/sequences/{sequence['id']}/edit").get_data(as_text=True)
    assert 'value="Day two"' in html and "&#34;days&#34;: 1" in html
    response = client.post(f"/console/sequences/{sequence['id']}/edit", data=editor_form(token, "Renamed", [
        {"type": "email", "subject": "Only one now", "html": "<p>x</p>", "extra": "{}"}]))
    assert response.status_code == 302
    body = client.get(f"/api/v1/email-sequences/{sequence['id']}", headers={"X-API-Key": alice.api_key}).get_json()
    assert body["name"] == "Renamed" and body["version"] == 2
    assert [s["subject"] for s in body["steps"]] == ["Only one now"]
    response = client.post(f"/console/sequences/{sequence['id']}/edit", data=editor_form(token, "Renamed", [
        {"type": "email", "subject": "", "html": "<p>x</p>", "extra": "{}"}]))
    assert response.status_code == 422
    with db.session_scope() as s:
        steps = s.scalars(select(Step).where(Step.sequence_id == sequence["id"])).all()
        assert [st.config["subject"] for st in steps] == ["Only one now"]


def test_posts_without_the_token_are_refused(client: Any, alice: Tenant) -> None:
    sequence = api_sequence(client, alice)
    sign_in(client, alice.api_key)
    assert client.post(f"/console/sequences/{sequence['id']}/activate").status_code == 400
    assert client.post("/console/sequences/new", data=editor_form("forged", "X", [
        {"type": "email", "subject": "s", "html": "h", "extra": "{}"}])).status_code == 400
    with db.session_scope() as s:
        assert s.get(Sequence, sequence["id"]).status == "draft"
        assert s.scalar(select(Enrollment.id)) is None
        assert len(s.scalars(select(Sequence.id)).all()) == 1


def test_experiments_show_with_their_chart(client: Any, alice: Tenant) -> None:
    sequence = api_sequence(client, alice, [{"type": "email", "subject": "Hi", "html": "<p>x</p>", "variants": [
        {"name": "A", "subject": "Plain"}, {"name": "B", "subject": "Curious"}], "experiment": {"metric": "opened"}}])
    step = sequence["steps"][0]["id"]
    with db.session_scope() as s:
        for variant, sent, opened in (("A", 1000, 100), ("B", 1000, 300)):
            for metric, count in (("sent", sent), ("opened", opened)):
                s.add(SequenceRollup(account_id=alice.account_id, sequence_id=sequence["id"], step_id=step,
                                     variant=variant, day=utcnow().date(), metric=metric,
                                     uniques=count, total=count))
    api = client.get(f"/api/v1/email-sequences/{sequence['id']}/experiments",
                     headers={"X-API-Key": alice.api_key}).get_json()
    sign_in(client, alice.api_key)
    html = client.get(f"/console/sequences/{sequence['id']}").get_data(as_text=True)
    assert api[0]["winner"] == "B"
    assert f"Step 0: opened · {api[0]['status']} · winner B" in html
    assert '<g class="arm" data-arm="B">' in html and ">30.0%</text>" in html and ">10.0%</text>" in html
    assert "<td>B</td><td class=\"num\">1,000</td><td class=\"num\">300</td>" in html


def test_an_active_sequence_edit_that_fails_preflight_changes_nothing(client: Any, alice: Tenant) -> None:
    sequence = api_sequence(client, alice)
    client.post(f"/api/v1/email-sequences/{sequence['id']}/activate", json={},
                headers={"X-API-Key": alice.api_key})
    token = sign_in(client, alice.api_key)
    spam = {"type": "email", "subject": "FREE!!! WIN CASH NOW $$$", "html": "<p>CLICK HERE NOW!!! 100% FREE, act now, "
            'cash bonus <a href="http://192.168.0.1/">http://paypal.com</a></p>', "extra": "{}"}
    response = client.post(f"/console/sequences/{sequence['id']}/edit", data=editor_form(token, "Spammy", [spam]))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'id="e-steps-0" role="alert">(<p>[^<]*</p>)*<p>[^<]*spam-trigger phrase', html)
    assert "Save although the pre-flight check fails" in html
    body = client.get(f"/api/v1/email-sequences/{sequence['id']}", headers={"X-API-Key": alice.api_key}).get_json()
    assert body["name"] == "Welcome" and body["version"] == 1 and len(body["steps"]) == 3
    response = client.post(f"/console/sequences/{sequence['id']}/edit",
                           data=editor_form(token, "Spammy", [spam], override_preflight="1"))
    assert response.status_code == 302
    body = client.get(f"/api/v1/email-sequences/{sequence['id']}", headers={"X-API-Key": alice.api_key}).get_json()
    assert body["name"] == "Spammy" and body["status"] == "active"
