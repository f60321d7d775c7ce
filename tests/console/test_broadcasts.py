"""The console's broadcasts: compose and edit a draft with the API's validation
next to each field, schedule through the pre-flight check (its report shown, the
override as the API's), cancel, and the counts per variant with the winner."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select, update

from models import Account, Broadcast, Message, db, utcnow
from tests.support import factories
from tests.support.broadcasts import step, topic_with
from tests.support.console import sign_in
from tests.support.db_fixtures import Tenant

CLEAN = {"name": "December", "topic": "news", "subject": "Our December news",
         "text": "Hello, here is what happened this month."}
SPAMMY = {**CLEAN, "subject": "ACT NOW!!! FREE MONEY", "html": "<p>100% free, click here, winner</p>"}


@pytest.fixture
def news(alice: Tenant) -> str:
    return topic_with(alice.account_id, factories.subscribers(alice.account_id, 3))


def _html(response: Any) -> str:
    return response.get_data(as_text=True)


def _rows(account_id: int) -> list[Broadcast]:
    with db.session_scope() as s:
        rows = list(s.scalars(select(Broadcast).where(Broadcast.account_id == account_id).order_by(Broadcast.id)))
        s.expunge_all()
        return rows


def _compose(client: Any, token: str, fields: dict[str, Any], url: str = "/console/broadcasts/new") -> Any:
    return client.post(url, data={"csrf_token": token, **fields})


def test_a_draft_is_composed_listed_and_edited(client: Any, alice: Tenant, news: str) -> None:
    token = sign_in(client, alice.api_key)
    assert "No broadcasts yet" in _html(client.get("/console/broadcasts"))
    form = _html(client.get("/console/broadcasts/new"))
    assert 'value="news"' in form and 'id="f-send_at"' in form and 'id="f-variants"' in form
    response = _compose(client, token, {**CLEAN, "send_at": "2026-12-24T09:00", "local_time": "",
                                        "variants": "A\nB | What you missed in December", "test_percent": "20",
                                        "test_metric": "clicked", "test_wait_seconds": "1800"})
    assert response.status_code == 302
    [row] = _rows(alice.account_id)
    assert row.status == "draft" and row.topic == "news" and row.subject == "Our December news"
    assert row.send_at == datetime(2026, 12, 24, 9, tzinfo=timezone.utc)  # the account's zone is UTC
    assert row.variants == [{"name": "A"}, {"name": "B", "subject": "What you missed in December"}]
    assert row.test == {"percent": 20, "metric": "clicked", "wait_seconds": 1800}
    assert "December" in _html(client.get("/console/broadcasts"))
    edit = _html(client.get(f"/console/broadcasts/{row.id}/edit"))
    assert "B | What you missed in December" in edit and 'value="2026-12-24T09:00"' in edit
    changed = _compose(client, token, {**CLEAN, "subject": "New subject", "local_time": "09:30"},
                       f"/console/broadcasts/{row.id}/edit")
    assert changed.status_code == 302
    [row] = _rows(alice.account_id)
    assert (row.subject, row.local_time, row.variants, row.test, row.send_at) == ("New subject", "09:30", None,
                                                                                  None, None)


def test_send_at_is_read_in_the_accounts_zone(client: Any, alice: Tenant, news: str) -> None:
    with db.session_scope() as s:
        s.get(Account, alice.account_id).timezone = "Asia/Tokyo"
    token = sign_in(client, alice.api_key)
    assert _compose(client, token, {**CLEAN, "send_at": "2026-12-24T09:00"}).status_code == 302
    [row] = _rows(alice.account_id)
    assert row.send_at == datetime(2026, 12, 24, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("fields", "box", "message"), [
    ({"name": ""}, "name", "Length must be between 1"),
    ({"topic": ""}, "segment_id", "exactly one audience"),
    ({"subject": ""}, "subject", "Missing data"),
    ({"text": ""}, "html", "Give the content"),
    ({"local_time": "9am"}, "local_time", "HH:MM"),
    ({"send_at": "soon"}, "send_at", "Not a valid ISO 8601"),
    ({"variants": "A\nA"}, "variants", "variants.1.name: Variant names must be unique."),
    ({"variants": "A\nB", "test_percent": "60"}, "test_percent", "less than or equal to 50"),
    ({"test_percent": "10"}, "test_percent", "needs"),
])
def test_bad_input_is_shown_next_to_its_field_and_saves_nothing(client: Any, alice: Tenant, news: str,
                                                                fields: dict[str, str], box: str, message: str) -> None:
    token = sign_in(client, alice.api_key)
    response = _compose(client, token, {**CLEAN, **fields})
    assert response.status_code == 422
    page = _html(response)
    errors_at = page.index(f'id="e-{box}"')
    assert message in page[errors_at:errors_at + 300], page[errors_at:errors_at + 300]
    assert 'value="December"' in page or box == "name"  # what was typed is kept
    assert _rows(alice.account_id) == []


def test_scheduling_a_clean_draft_and_cancelling_it(client: Any, alice: Tenant, news: str) -> None:
    token = sign_in(client, alice.api_key)
    _compose(client, token, CLEAN)
    [row] = _rows(alice.account_id)
    page = _html(client.get(f"/console/broadcasts/{row.id}"))
    assert "Schedule now" in page and "Nothing sent yet" in page
    response = client.post(f"/console/broadcasts/{row.id}/schedule", data={"csrf_token": token})
    assert response.status_code == 302
    assert "Scheduled." in _html(client.get(response.headers["Location"]))
    assert _rows(alice.account_id)[0].status == "scheduled"
    assert "Only a draft" in _html(client.get(f"/console/broadcasts/{row.id}/edit", follow_redirects=True))
    assert step(utcnow() + timedelta(seconds=1)) == "sending"
    cancelled = client.post(f"/console/broadcasts/{row.id}/cancel", data={"csrf_token": token})
    assert cancelled.status_code == 302
    assert _rows(alice.account_id)[0].status == "cancelled"
    page = _html(client.get(f"/console/broadcasts/{row.id}"))
    assert "Cancel broadcast" not in page and '<td class="num">3</td>' in page  # three suppressed
    with db.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Message).where(
            Message.broadcast_id == row.id, Message.status == "suppressed")) == 3
    again = client.post(f"/console/broadcasts/{row.id}/cancel", data={"csrf_token": token}, follow_redirects=True)
    assert "cannot be cancelled" in _html(again)


def test_a_failing_preflight_shows_its_report_and_can_be_overridden(client: Any, alice: Tenant, news: str) -> None:
    token = sign_in(client, alice.api_key)
    _compose(client, token, SPAMMY)
    [row] = _rows(alice.account_id)
    refused = client.post(f"/console/broadcasts/{row.id}/schedule", data={"csrf_token": token})
    assert refused.status_code == 409
    page = _html(refused)
    assert "pre-flight check refused" in page and 'name="override_preflight"' in page
    assert _rows(alice.account_id)[0].status == "draft"
    forced = client.post(f"/console/broadcasts/{row.id}/schedule",
                         data={"csrf_token": token, "override_preflight": "on"})
    assert forced.status_code == 302
    [row] = _rows(alice.account_id)
    assert row.status == "scheduled" and row.preflight_overridden is True


def test_the_page_shows_counts_per_variant_and_the_winner(client: Any, alice: Tenant) -> None:
    topic_with(alice.account_id, factories.subscribers(alice.account_id, 40))
    token = sign_in(client, alice.api_key)
    _compose(client, token, {**CLEAN, "variants": "A\nB | Better", "test_percent": "50", "test_metric": "opened",
                             "test_wait_seconds": "600"})
    [row] = _rows(alice.account_id)
    client.post(f"/console/broadcasts/{row.id}/schedule", data={"csrf_token": token})
    start = utcnow() + timedelta(seconds=1)
    assert step(start) == "testing"
    page = _html(client.get(f"/console/broadcasts/{row.id}"))
    assert '<th scope="row">A' in page and '<th scope="row">B' in page and '<th scope="row">held' in page
    with db.session_scope() as s:
        s.execute(update(Broadcast).where(Broadcast.id == row.id).values(winner="B", decided_at=start))
    assert 'B <span class="badge ok">winner</span>' in _html(client.get(f"/console/broadcasts/{row.id}"))


def test_another_accounts_broadcast_is_a_404(client: Any, alice: Tenant, bob: Tenant) -> None:
    topic_with(bob.account_id, [], key="bobnews")
    bob_token = sign_in(client, bob.api_key)
    _compose(client, bob_token, {**CLEAN, "name": "Bob's news", "topic": "bobnews"})
    [bobs] = _rows(bob.account_id)
    client.post("/console/sign-out", data={"csrf_token": bob_token})
    token = sign_in(client, alice.api_key)
    assert "Bob's news" not in _html(client.get("/console/broadcasts"))
    for url in (f"/console/broadcasts/{bobs.id}", f"/console/broadcasts/{bobs.id}/edit"):
        assert client.get(url).status_code == 404, url
    for url in (f"/console/broadcasts/{bobs.id}/edit", f"/console/broadcasts/{bobs.id}/schedule",
                f"/console/broadcasts/{bobs.id}/cancel"):
        assert _compose(client, token, CLEAN, url).status_code == 404, url
    # Nor can Alice name Bob's topic as her audience.
    assert "No such topic" in _html(_compose(client, token, {**CLEAN, "topic": "bobnews"}))
    assert [r.status for r in _rows(bob.account_id)] == ["draft"] and _rows(alice.account_id) == []


def test_actions_without_the_csrf_token_are_refused(client: Any, alice: Tenant, news: str) -> None:
    token = sign_in(client, alice.api_key)
    _compose(client, token, CLEAN)
    [row] = _rows(alice.account_id)
    assert client.post("/console/broadcasts/new", data=CLEAN).status_code == 400
    assert client.post(f"/console/broadcasts/{row.id}/schedule", data={"csrf_token": "x"}).status_code == 400
    assert client.post(f"/console/broadcasts/{row.id}/cancel").status_code == 400
    assert [r.status for r in _rows(alice.account_id)] == ["draft"]


def test_editing_keeps_the_bodies_the_api_gave_its_variants(client: Any, alice: Tenant, news: str) -> None:
    body = {**CLEAN, "variants": [{"name": "A", "html": "<p>Long A</p>"}, {"name": "B", "subject": "Other"}]}
    created = client.post("/api/v1/broadcasts", json=body, headers=alice.headers)
    assert created.status_code == 201
    token = sign_in(client, alice.api_key)
    bid = created.get_json()["id"]
    assert "A\nB | Other" in _html(client.get(f"/console/broadcasts/{bid}/edit"))
    response = _compose(client, token, {**CLEAN, "variants": "A | New A\nB | Other"}, f"/console/broadcasts/{bid}/edit")
    assert response.status_code == 302
    assert _rows(alice.account_id)[0].variants == [{"name": "A", "html": "<p>Long A</p>", "subject": "New A"},
                                                   {"name": "B", "subject": "Other"}]
