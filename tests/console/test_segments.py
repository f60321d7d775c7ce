"""The console's segments: the list with counts, the editor's errors by path, the
live count (the API's), members in pages and as CSV, nothing of another account's."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from models import Segment, db
from tests.support import factories
from tests.support.console import sign_in
from tests.support.db_fixtures import Tenant

VIP = {"tag": "vip"}


def _html(response: Any) -> str:
    return response.get_data(as_text=True)


def _segment(account_id: int, name: str, filter: dict[str, Any]) -> int:
    with db.session_scope() as s:
        row = Segment(account_id=account_id, name=name, filter=filter)
        s.add(row)
        s.flush()
        return row.id


def _segments(account_id: int) -> list[tuple[str, dict[str, Any]]]:
    with db.session_scope() as s:
        return [(r.name, r.filter) for r in s.scalars(select(Segment).where(Segment.account_id == account_id))]


def test_the_list_shows_each_segments_count(client: Any, alice: Tenant) -> None:
    factories.subscribers(alice.account_id, 3, prefix="vip", tags=["vip"])
    factories.subscribers(alice.account_id, 1234 - 3, prefix="plain")
    _segment(alice.account_id, "VIPs", VIP)
    _segment(alice.account_id, "Everyone", {"all": []})
    sign_in(client, alice.api_key)
    page = _html(client.get("/console/segments"))
    assert "VIPs" in page and '<td class="num">3</td>' in page
    assert "Everyone" in page and '<td class="num">1,234</td>' in page


def test_an_empty_list_says_how_to_build_one(client: Any, alice: Tenant) -> None:
    sign_in(client, alice.api_key)
    page = _html(client.get("/console/segments"))
    assert "No segments yet" in page and 'href="/console/segments/new"' in page


def test_the_editor_renders_with_its_builder_and_examples(client: Any, alice: Tenant) -> None:
    sign_in(client, alice.api_key)
    page = _html(client.get("/console/segments/new"))
    assert 'src="/console/static/segments.js"' in page and 'data-count-url="/console/segments/count"' in page
    assert "clicked_within_days" in page and 'id="f-filter"' in page
    assert "<script>" not in page and " style=" not in page and " onclick=" not in page  # the CSP allows neither
    assert client.get("/console/static/segments.js").status_code == 200


def test_creating_saves_it_and_shows_its_members(client: Any, alice: Tenant) -> None:
    factories.subscribers(alice.account_id, 2, prefix="vip", tags=["vip"])
    factories.subscribers(alice.account_id, 2, prefix="plain")
    token = sign_in(client, alice.api_key)
    response = client.post("/console/segments/new", data={"csrf_token": token, "name": "VIPs",
                                                          "filter": json.dumps(VIP)})
    assert response.status_code == 302
    assert _segments(alice.account_id) == [("VIPs", VIP)]
    page = _html(client.get(response.headers["Location"]))
    assert "Segment “VIPs” saved" in page and "<strong>2</strong> members now" in page
    assert "vip0@example.test" in page and "plain0@example.test" not in page


def test_bad_filters_show_the_errors_by_path_and_save_nothing(client: Any, alice: Tenant) -> None:
    token = sign_in(client, alice.api_key)
    bad = {"all": [{"tag": "vip"}, {"attribute": "plan", "op": "approx", "value": 1}]}
    for name, text, shown in (("Mixed", json.dumps(bad), "filter.all.1.op"),
                              ("Broken", "{not json", "Not valid JSON"),
                              ("", json.dumps(VIP), "Missing data for required field")):
        response = client.post("/console/segments/new", data={"csrf_token": token, "name": name, "filter": text})
        assert response.status_code == 422
        page = _html(response)
        assert shown in page, name
        assert (text.replace('"', "&#34;") in page) or (text in page)  # what was typed is kept
    assert _segments(alice.account_id) == []


def test_editing_changes_the_filter_and_bad_input_changes_nothing(client: Any, alice: Tenant) -> None:
    segment_id = _segment(alice.account_id, "VIPs", VIP)
    token = sign_in(client, alice.api_key)
    assert "VIPs" in _html(client.get(f"/console/segments/{segment_id}/edit"))
    refused = client.post(f"/console/segments/{segment_id}/edit", data={
        "csrf_token": token, "name": "Renamed", "filter": json.dumps({"any": []})})
    assert refused.status_code == 422 and "filter.any" in _html(refused)
    assert _segments(alice.account_id) == [("VIPs", VIP)]
    clicked = {"clicked_within_days": 30}
    done = client.post(f"/console/segments/{segment_id}/edit", data={
        "csrf_token": token, "name": "Clickers", "filter": json.dumps(clicked)})
    assert done.status_code == 302
    assert _segments(alice.account_id) == [("Clickers", clicked)]


def test_the_live_count_is_the_apis(client: Any, alice: Tenant) -> None:
    factories.subscribers(alice.account_id, 3, prefix="vip", tags=["vip"])
    factories.subscribers(alice.account_id, 2, prefix="plain")
    token = sign_in(client, alice.api_key)
    headers = {"X-CSRF-Token": token}
    for filter in (VIP, {"all": []}, {"not": VIP}):
        ours = client.post("/console/segments/count", json={"filter": filter}, headers=headers)
        api = client.post("/api/v1/segments/count", json={"filter": filter}, headers=alice.headers)
        assert ours.status_code == 200 and ours.get_json() == api.get_json(), filter
    assert client.post("/console/segments/count", json={"filter": VIP}, headers=headers).get_json() == {"count": 3}
    bad = client.post("/console/segments/count", json={"filter": {"tag": "vip", "topic": "x"}}, headers=headers)
    assert bad.status_code == 422 and any(path.startswith("filter") for path in bad.get_json()["errors"])
    missing = client.post("/console/segments/count", json={}, headers=headers)
    assert missing.status_code == 422 and "filter" in missing.get_json()["errors"]
    assert client.post("/console/segments/count", json={"filter": VIP}).status_code == 400  # no CSRF header


def test_members_are_paginated_and_exported_as_csv(client: Any, alice: Tenant) -> None:
    factories.subscribers(alice.account_id, 52, prefix="vip", tags=["vip"])
    segment_id = _segment(alice.account_id, "VIPs", VIP)
    sign_in(client, alice.api_key)
    first = _html(client.get(f"/console/segments/{segment_id}"))
    assert "Page 1 of 2 (52 in all)" in first
    assert _html(client.get(f"/console/segments/{segment_id}?page=2")).count("@example.test</a>") == 2
    csv = client.get(f"/console/segments/{segment_id}/members.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    lines = csv.get_data(as_text=True).strip().splitlines()
    assert lines[0].startswith("id,email,") and len(lines) == 53
    api = client.get(f"/api/v1/segments/{segment_id}/subscribers?format=csv", headers=alice.headers)
    assert api.get_data(as_text=True) == csv.get_data(as_text=True)


def test_deleting_keeps_the_subscribers(client: Any, alice: Tenant) -> None:
    factories.subscribers(alice.account_id, 2, prefix="vip", tags=["vip"])
    segment_id = _segment(alice.account_id, "VIPs", VIP)
    token = sign_in(client, alice.api_key)
    assert client.post(f"/console/segments/{segment_id}/delete").status_code == 400
    assert _segments(alice.account_id) == [("VIPs", VIP)]
    response = client.post(f"/console/segments/{segment_id}/delete", data={"csrf_token": token})
    assert response.status_code == 302 and _segments(alice.account_id) == []
    assert "vip1@example.test" in _html(client.get("/console/subscribers"))


def test_another_accounts_segment_is_a_404(client: Any, alice: Tenant, bob: Tenant) -> None:
    factories.subscribers(bob.account_id, 1, prefix="bobvip", tags=["vip"])
    bobs = _segment(bob.account_id, "Bob's VIPs", VIP)
    token = sign_in(client, alice.api_key)
    assert "Bob's VIPs" not in _html(client.get("/console/segments"))
    for url in (f"/console/segments/{bobs}", f"/console/segments/{bobs}/edit", f"/console/segments/{bobs}/members.csv"):
        response = client.get(url)
        assert response.status_code == 404 and "bobvip" not in _html(response), url
    assert client.post(f"/console/segments/{bobs}/edit", data={"csrf_token": token, "name": "Mine",
                                                               "filter": "{}"}).status_code == 404
    assert client.post(f"/console/segments/{bobs}/delete", data={"csrf_token": token}).status_code == 404
    assert _segments(bob.account_id) == [("Bob's VIPs", VIP)]
    # The live count counts only the signed-in account's subscribers.
    assert client.post("/console/segments/count", json={"filter": VIP},
                       headers={"X-CSRF-Token": token}).get_json() == {"count": 0}
    with db.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Segment)) == 1
