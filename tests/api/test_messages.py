"""The delivery log: filtered, paginated, scoped to the caller's account."""
from __future__ import annotations

import json

from models import Message, db
from tests.support import factories


def _messages(account_id: int, statuses: list[str]) -> int:
    seq = factories.sequence(account_id, [{"type": "email", "subject": "x", "text": "x"}])
    subs = factories.subscribers(account_id, len(statuses))
    with db.session_scope() as s:
        for i, (sub, status) in enumerate(zip(subs, statuses, strict=True)):
            s.add(Message(account_id=account_id, subscriber_id=sub, sequence_id=seq, idempotency_key=f"{account_id}:{i}",
                          status=status, to_email=f"user{i}@example.test", subject="x"))
    return seq


def test_it_lists_filters_and_paginates_the_delivery_log(client, alice):
    seq = _messages(alice.account_id, ["sent", "sent", "deferred"])
    response = client.get("/api/v1/messages?status=sent&page_size=1", headers=alice.headers)
    assert response.status_code == 200
    assert len(response.get_json()) == 1
    assert json.loads(response.headers["X-Pagination"])["total"] == 2
    everything = client.get(f"/api/v1/messages?sequence_id={seq}", headers=alice.headers).get_json()
    assert sorted(m["status"] for m in everything) == ["deferred", "sent", "sent"]
    assert {"status", "provider", "attempts", "sent_at", "error"} <= set(everything[0])


def test_it_never_shows_another_accounts_messages(client, alice, bob):
    _messages(bob.account_id, ["sent"])
    assert client.get("/api/v1/messages", headers=alice.headers).get_json() == []


def test_it_refuses_a_bad_filter_with_the_field_named(client, alice):
    response = client.get("/api/v1/messages?status=lost", headers=alice.headers)
    assert response.status_code == 422
    assert "status" in response.get_json()["errors"]["query"]


def test_it_filters_by_broadcast_recipient_and_creation_time(client, alice):
    from datetime import datetime, timezone

    subs = factories.subscribers(alice.account_id, 2)
    day = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
    with db.session_scope() as s:
        for i, (sub, broadcast_id, created) in enumerate([(subs[0], 5, day), (subs[1], None, day),
                                                         (subs[0], None, day.replace(day=10))]):
            s.add(Message(account_id=alice.account_id, subscriber_id=sub, broadcast_id=broadcast_id,
                          idempotency_key=f"f:{i}", status="sent", to_email=f"User{i}@Example.test",
                          subject=f"s{i}", created_at=created))

    def subjects(query):
        response = client.get(f"/api/v1/messages?{query}", headers=alice.headers)
        assert response.status_code == 200, response.get_json()
        return sorted(m["subject"] for m in response.get_json())

    assert subjects("broadcast_id=5") == ["s0"]
    assert subjects("email=user1@") == ["s1"]
    assert subjects("since=2026-11-15T00:00:00Z") == ["s0", "s1"]
    assert subjects("until=2026-11-15T00:00:00%2B01:00") == ["s2"]
    bad = client.get("/api/v1/messages?since=yesterday", headers=alice.headers)
    assert bad.status_code == 422 and "since" in bad.get_json()["errors"]["query"]
