"""Segments over the API on PostgreSQL: every leaf kind matches exactly the
subscribers worked out by hand (tests/support/audience_rows.py), never another
account's; errors name the path inside the filter; another account's segment is
a 404; a segment can be enrolled into a sequence."""
from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from models import Enrollment, Segment, utcnow
from sequencing.holdout import is_held_out
from tests.support import audience_rows

URL = "/api/v1/segments"
SEQUENCES = "/api/v1/email-sequences"


@pytest.fixture
def audience(session, alice, bob):
    now = utcnow()
    rows = audience_rows.build(session, alice.account_id, bob.account_id, now)
    session.commit()
    return rows, now


def _members(client, tenant, segment_id: int) -> set[str]:
    response = client.get(f"{URL}/{segment_id}/subscribers?page_size=100", headers=tenant.headers)
    assert response.status_code == 200, response.get_json()
    return {row["email"] for row in response.get_json()}


def test_every_leaf_matches_exactly_its_subscribers_and_never_another_accounts(client, alice, audience):
    rows, now = audience
    failures = []
    for filter_, expected in audience_rows.cases(rows, now):
        created = client.post(URL, json={"name": "case", "filter": filter_}, headers=alice.headers)
        assert created.status_code == 201, (filter_, created.get_json())
        body = created.get_json()
        members = _members(client, alice, body["id"])
        counted = client.post(f"{URL}/count", json={"filter": filter_}, headers=alice.headers).get_json()["count"]
        if members != expected or body["count"] != len(expected) or counted != len(expected):
            failures.append((filter_, sorted(members), body["count"], counted, sorted(expected)))
    assert not failures, failures


def test_a_segment_is_created_read_listed_renamed_and_deleted(client, alice, audience):
    created = client.post(URL, json={"name": "VIPs", "filter": {"tag": "vip"}}, headers=alice.headers)
    assert created.status_code == 201
    body = created.get_json()
    assert (body["name"], body["filter"], body["count"]) == ("VIPs", {"tag": "vip"}, 2)
    assert set(body) >= {"id", "name", "filter", "count", "created_at", "updated_at"}
    got = client.get(f"{URL}/{body['id']}", headers=alice.headers).get_json()
    assert (got["id"], got["count"]) == (body["id"], 2)
    listed = client.get(URL, headers=alice.headers)
    assert [s["id"] for s in listed.get_json()] == [body["id"]]
    assert '"total": 1' in listed.headers["X-Pagination"]
    patched = client.patch(f"{URL}/{body['id']}", json={"name": "Openers", "filter": {"opened_within_days": 7}},
                           headers=alice.headers)
    assert patched.status_code == 200, patched.get_json()
    assert (patched.get_json()["name"], patched.get_json()["count"]) == ("Openers", 1)
    assert client.delete(f"{URL}/{body['id']}", headers=alice.headers).status_code == 204
    assert client.get(f"{URL}/{body['id']}", headers=alice.headers).status_code == 404


def test_a_filter_is_stored_in_normal_form(client, alice):
    body = client.post(URL, json={"name": "n", "filter": {"any": [
        {"event": "purchase"}, {"field": "email_domain", "op": "eq", "value": "Example.COM"},
        {"field": "created_at", "op": "gt", "value": "2026-01-01T00:00:00"}]}}, headers=alice.headers).get_json()
    assert body["filter"] == {"any": [
        {"event": "purchase", "count_gte": 1}, {"field": "email_domain", "op": "eq", "value": "example.com"},
        {"field": "created_at", "op": "gt", "value": "2026-01-01T00:00:00+00:00"}]}


def test_members_come_in_pages_and_as_csv(client, alice, audience):
    segment_id = client.post(URL, json={"name": "all", "filter": {"all": []}}, headers=alice.headers).get_json()["id"]
    first = client.get(f"{URL}/{segment_id}/subscribers?page_size=2", headers=alice.headers)
    second = client.get(f"{URL}/{segment_id}/subscribers?page_size=2&page=2", headers=alice.headers)
    assert '"total": 3' in first.headers["X-Pagination"]
    emails = [r["email"] for r in first.get_json() + second.get_json()]
    assert sorted(emails) == sorted([audience_rows.ANN, audience_rows.BOB, audience_rows.CY])
    response = client.get(f"{URL}/{segment_id}/subscribers?format=csv", headers=alice.headers)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert sorted(r["email"] for r in table) == sorted(emails)
    assert {r["status"] for r in table} == {"active"}


@pytest.mark.parametrize(("filter_", "path"), [
    ({"all": [{"tag": "a"}, {"tag": "b"}, {"attribute": "plan", "op": "like", "value": "x"}]}, "filter.all.2.op"),
    ({"any": [{"not": {"tag": "a", "colour": "red"}}]}, "filter.any.0.not.colour"),
    ({"all": [{"event": "purchase", "count_gte": 0}]}, "filter.all.0.count_gte"),
    ({"all": [{"score": "happiness", "op": "gt", "value": 1}]}, "filter.all.0.score"),
    ({"score": "churn_risk", "op": "gt", "value": "high"}, "filter.value"),
    ({"field": "status", "op": "eq", "value": "asleep"}, "filter.value"),
    ({"field": "email_domain", "op": "in", "value": ["ok.com", "a@b.com"]}, "filter.value.1"),
    ({"attribute": "plan", "op": "in", "value": list(range(101))}, "filter.value"),
    ({"attribute": "plan", "op": "exists", "value": 1}, "filter.value"),
    ({"clicked_within_days": 0}, "filter.clicked_within_days"),
    ({"sequence": 1, "status": "someday"}, "filter.status"),
    ({"tag": "a", "topic": "b"}, "filter"),
    ({"any": []}, "filter.any"),
    ("everyone", "filter"),
])
def test_a_bad_filter_is_a_422_naming_its_path_and_writes_nothing(client, alice, session, filter_, path):
    for url, body in ((URL, {"name": "bad", "filter": filter_}), (f"{URL}/count", {"filter": filter_})):
        response = client.post(url, json=body, headers=alice.headers)
        assert response.status_code == 422, response.get_json()
        assert path in response.get_json()["errors"]["json"], response.get_json()
    assert session.scalar(select(func.count()).select_from(Segment)) == 0


def test_a_filter_too_deep_or_too_big_is_refused(client, alice):
    deep: dict = {"tag": "x"}
    for _ in range(10):
        deep = {"not": deep}
    response = client.post(f"{URL}/count", json={"filter": deep}, headers=alice.headers)
    assert response.status_code == 422
    assert "filter" + ".not" * 10 in response.get_json()["errors"]["json"]
    big = {"any": [{"tag": f"t{i}"} for i in range(100)]}
    response = client.post(f"{URL}/count", json={"filter": big}, headers=alice.headers)
    assert response.status_code == 422 and "filter.any.99" in response.get_json()["errors"]["json"]
    assert client.post(f"{URL}/count", json={"filter": {"any": big["any"][:99]}},
                       headers=alice.headers).status_code == 200


def test_another_accounts_segment_is_a_404_everywhere(client, alice, bob, audience):
    segment_id = client.post(URL, json={"name": "VIPs", "filter": {"tag": "vip"}}, headers=alice.headers).get_json()["id"]
    assert client.get(f"{URL}/{segment_id}", headers=bob.headers).status_code == 404
    assert client.get(f"{URL}/{segment_id}/subscribers", headers=bob.headers).status_code == 404
    assert client.patch(f"{URL}/{segment_id}", json={"name": "mine"}, headers=bob.headers).status_code == 404
    assert client.delete(f"{URL}/{segment_id}", headers=bob.headers).status_code == 404
    assert client.get(URL, headers=bob.headers).get_json() == []
    assert client.get(f"{URL}/{segment_id}", headers=alice.headers).get_json()["name"] == "VIPs"


def _active_sequence(client, tenant, settings=None) -> int:
    body = {"name": "Drip", "steps": [{"type": "email", "subject": "Hi", "text": "Hello"}],
            **({"settings": settings} if settings else {})}
    created = client.post(SEQUENCES, json=body, headers=tenant.headers)
    assert created.status_code == 201, created.get_json()
    activated = client.post(f"{SEQUENCES}/{created.get_json()['id']}/activate", json={"override_preflight": True},
                            headers=tenant.headers)
    assert activated.status_code == 200, activated.get_json()
    return int(created.get_json()["id"])


def test_a_segment_is_enrolled_once_with_the_holdout_draw(client, alice, session, audience):
    rows, _now = audience
    segment_id = client.post(URL, json={"name": "all", "filter": {"field": "status", "op": "in",
                                                                   "value": ["active", "unsubscribed"]}},
                             headers=alice.headers).get_json()["id"]
    sequence_id = _active_sequence(client, alice, {"holdout_percent": 50})
    response = client.post(f"{SEQUENCES}/{sequence_id}/subscribers", json={"segment_id": segment_id},
                           headers=alice.headers)
    assert response.status_code == 202, response.get_json()
    assert response.get_json() == {"enrolled": 3, "skipped": 0}  # dee is unsubscribed: never enrolled
    enrolled = dict(session.execute(select(Enrollment.subscriber_id, Enrollment.held_out).where(
        Enrollment.sequence_id == sequence_id)).all())
    ids = rows["ids"]
    assert set(enrolled) == {ids[audience_rows.ANN], ids[audience_rows.BOB], ids[audience_rows.CY]}
    assert enrolled == {sub: is_held_out(sequence_id, sub, 50) for sub in enrolled}
    again = client.post(f"{SEQUENCES}/{sequence_id}/subscribers", json={"segment_id": segment_id},
                        headers=alice.headers)
    assert again.get_json() == {"enrolled": 0, "skipped": 3}


def test_enrolling_another_accounts_segment_or_mixing_inputs_is_refused(client, alice, bob, audience):
    segment_id = client.post(URL, json={"name": "VIPs", "filter": {"tag": "vip"}}, headers=alice.headers).get_json()["id"]
    bobs_sequence = _active_sequence(client, bob)
    response = client.post(f"{SEQUENCES}/{bobs_sequence}/subscribers", json={"segment_id": segment_id},
                           headers=bob.headers)
    assert response.status_code == 422 and "segment_id" in response.get_json()["errors"]["json"]
    alices_sequence = _active_sequence(client, alice)
    mixed = client.post(f"{SEQUENCES}/{alices_sequence}/subscribers",
                        json={"segment_id": segment_id, "subscriber_ids": [1]}, headers=alice.headers)
    assert mixed.status_code == 422 and "segment_id" in mixed.get_json()["errors"]["json"]
    assert client.post(f"{SEQUENCES}/{bobs_sequence}/subscribers", json={"segment_id": segment_id},
                       headers=alice.headers).status_code == 404


@pytest.mark.parametrize(("filter_", "count"), [
    ({"attribute": "age", "op": "gt", "value": 2**62}, 0),
    ({"attribute": "age", "op": "gt", "value": -1.5e308}, 2),  # ann 30, cy 45.5; bob's is a string
    ({"attribute": "age", "op": "in", "value": [2**62, "31", True, 0.5]}, 1),  # bob's "31"
    ({"score": "best_send_hour", "op": "lt", "value": 2**62}, 1),
    ({"score": "best_send_hour", "op": "eq", "value": 9.5}, 0),
    ({"event": "purchase", "count_gte": 1_000_000, "within_days": 3650}, 0),
    ({"sequence": 2**31 - 1, "status": "completed"}, 0),
    ({"attribute": "naïve \\ key", "op": "eq", "value": "ü"}, 0),
])
def test_extreme_but_valid_values_are_answered_not_a_500(client, alice, audience, filter_, count):
    response = client.post(f"{URL}/count", json={"filter": filter_}, headers=alice.headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["count"] == count
