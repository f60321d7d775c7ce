"""The console's subscribers: search, a profile with its timeline, unsubscribe and
erase as the API does them, nothing of another account's."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from analytics.events import record_event
from models import Enrollment, Event, Message, Subscriber, SubscriberScore, Suppression, db, utcnow
from tests.support import factories
from tests.support.console import sign_in
from tests.support.db_fixtures import Tenant


def _html(response: Any) -> str:
    return response.get_data(as_text=True)


def _history(account_id: int, subscriber_id: int, events: int) -> int:
    """``events`` events (1, 2, 3... hours ago), a message to them (4 days ago) and
    an enrollment (5 days ago)."""
    now = utcnow()
    sequence_id = factories.sequence(account_id, [{"type": "email", "subject": "Welcome aboard", "text": "Hi"}])
    factories.enroll(account_id, sequence_id, [subscriber_id], now - timedelta(days=5))
    with db.session_scope() as s:
        s.add(Message(account_id=account_id, subscriber_id=subscriber_id, sequence_id=sequence_id,
                      idempotency_key=f"t:{subscriber_id}", status="sent", to_email="x@example.test",
                      subject="Welcome aboard", created_at=now - timedelta(days=4)))
        for i in range(events):
            record_event(s, account_id=account_id, subscriber_id=subscriber_id, name=f"viewed_page_{i}",
                         now=now, occurred_at=now - timedelta(hours=i + 1))
    return sequence_id


def test_the_list_searches_by_email_status_and_tag(client: Any, alice: Tenant) -> None:
    factories.subscribers(alice.account_id, 3, prefix="ada", tags=["vip"])
    factories.subscribers(alice.account_id, 2, prefix="bob")
    factories.subscribers(alice.account_id, 1, prefix="gone", status="unsubscribed")
    sign_in(client, alice.api_key)
    page = _html(client.get("/console/subscribers"))
    assert "ada0@example.test" in page and "bob1@example.test" in page and "gone0@example.test" in page
    by_email = _html(client.get("/console/subscribers?email=ADA1"))
    assert "ada1@example.test" in by_email and "ada0@example.test" not in by_email
    by_tag = _html(client.get("/console/subscribers?tag=vip"))
    assert "ada2@example.test" in by_tag and "bob0@example.test" not in by_tag
    by_status = _html(client.get("/console/subscribers?status=unsubscribed"))
    assert "gone0@example.test" in by_status and "ada0@example.test" not in by_status
    assert "No subscriber matches" in _html(client.get("/console/subscribers?email=nobody"))


def test_the_list_is_paginated(client: Any, alice: Tenant) -> None:
    factories.subscribers(alice.account_id, 55, prefix="p")
    sign_in(client, alice.api_key)
    first, second = _html(client.get("/console/subscribers")), _html(client.get("/console/subscribers?page=2"))
    assert "Page 1 of 2 (55 in all)" in first and 'rel="next"' in first
    assert second.count("@example.test</a>") == 5


def test_a_bad_filter_names_the_field_and_lists_nothing(client: Any, alice: Tenant) -> None:
    factories.subscribers(alice.account_id, 1, prefix="ada")
    sign_in(client, alice.api_key)
    response = client.get("/console/subscribers?status=asleep")
    assert response.status_code == 200
    page = _html(response)
    assert "Must be one of" in page and "ada0@example.test" not in page


def test_an_empty_account_says_how_to_add_subscribers(client: Any, alice: Tenant) -> None:
    sign_in(client, alice.api_key)
    assert "No subscribers yet" in _html(client.get("/console/subscribers"))


def test_the_profile_shows_fields_scores_and_a_timeline_newest_first(client: Any, alice: Tenant) -> None:
    [sid] = factories.subscribers(alice.account_id, 1, prefix="ada", tags=["vip"], attributes={"plan": "pro"})
    _history(alice.account_id, sid, 3)
    with db.session_scope() as s:
        s.add(SubscriberScore(account_id=alice.account_id, subscriber_id=sid, churn_risk=0.25, engagement=0.5,
                              best_send_hour=9, scored_at=utcnow()))
    sign_in(client, alice.api_key)
    page = _html(client.get(f"/console/subscribers/{sid}"))
    assert "ada0@example.test" in page and "plan" in page and "vip" in page
    assert "25.0%" in page and "09:00 their time" in page
    order = [page.index(m) for m in ("viewed_page_0", "viewed_page_2", "Welcome aboard", "Enrolled in Welcome")]
    assert order == sorted(order)


def test_the_timeline_pages_back_through_older_entries(client: Any, alice: Tenant) -> None:
    [sid] = factories.subscribers(alice.account_id, 1)
    _history(alice.account_id, sid, 60)  # 62 entries, 50 a page: events 0-49, then 50-59 and the rest
    sign_in(client, alice.api_key)
    first = _html(client.get(f"/console/subscribers/{sid}"))
    assert "viewed_page_0<" in first and "viewed_page_49<" in first and "viewed_page_50<" not in first
    older = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = _html(client.get(older))
    assert "viewed_page_50<" in second and "viewed_page_59<" in second and "Enrolled in Welcome" in second
    assert "viewed_page_49<" not in second and 'rel="next"' not in second


def test_unsubscribe_suppresses_the_address_and_ends_sequences(client: Any, alice: Tenant) -> None:
    [sid] = factories.subscribers(alice.account_id, 1, prefix="ada")
    _history(alice.account_id, sid, 0)
    token = sign_in(client, alice.api_key)
    response = client.post(f"/console/subscribers/{sid}/unsubscribe", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == f"/console/subscribers/{sid}"
    assert "is unsubscribed" in _html(client.get(response.headers["Location"]))
    with db.session_scope() as s:
        assert s.get(Subscriber, sid).status == "unsubscribed"
        assert s.scalar(select(Suppression.reason).where(Suppression.account_id == alice.account_id,
                                                         Suppression.email == "ada0@example.test")) == "unsubscribed"
        assert s.scalar(select(Enrollment.status).where(Enrollment.subscriber_id == sid)) == "exited"
        assert s.scalar(select(Event.source).where(Event.subscriber_id == sid, Event.name == "unsubscribed")) == "console"


def test_the_api_unsubscribes_the_same_way(client: Any, alice: Tenant, bob: Tenant) -> None:
    [sid] = factories.subscribers(alice.account_id, 1, prefix="ada")
    assert client.post(f"/api/v1/subscribers/{sid}/unsubscribe", headers=bob.headers).status_code == 404
    response = client.post(f"/api/v1/subscribers/{sid}/unsubscribe", headers=alice.headers)
    assert response.status_code == 200 and response.get_json()["status"] == "unsubscribed"
    listed = client.get("/api/v1/suppressions", headers=alice.headers).get_json()
    assert [(s["email"], s["reason"]) for s in listed] == [("ada0@example.test", "unsubscribed")]


def test_erase_removes_the_person_and_keeps_the_address_suppressed(client: Any, alice: Tenant) -> None:
    [sid, other] = factories.subscribers(alice.account_id, 2, prefix="ada")
    _history(alice.account_id, sid, 2)
    token = sign_in(client, alice.api_key)
    response = client.post(f"/console/subscribers/{sid}/erase", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/console/subscribers"
    assert "is erased" in _html(client.get("/console/subscribers"))
    assert client.get(f"/console/subscribers/{sid}").status_code == 404
    with db.session_scope() as s:
        assert s.get(Subscriber, sid) is None and s.get(Subscriber, other) is not None
        assert s.scalar(select(func.count()).select_from(Event).where(Event.subscriber_id == sid)) == 0
        assert s.scalar(select(Suppression.email_hash).where(Suppression.account_id == alice.account_id)) is not None


def test_another_accounts_subscriber_is_a_404_and_untouched(client: Any, alice: Tenant, bob: Tenant) -> None:
    [bobs] = factories.subscribers(bob.account_id, 1, prefix="bobs")
    token = sign_in(client, alice.api_key)
    assert "bobs0@example.test" not in _html(client.get("/console/subscribers?email=bobs"))
    response = client.get(f"/console/subscribers/{bobs}")
    assert response.status_code == 404 and "bobs0" not in _html(response)
    assert client.post(f"/console/subscribers/{bobs}/unsubscribe", data={"csrf_token": token}).status_code == 404
    assert client.post(f"/console/subscribers/{bobs}/erase", data={"csrf_token": token}).status_code == 404
    with db.session_scope() as s:
        assert s.get(Subscriber, bobs).status == "active"
        assert s.scalar(select(func.count()).select_from(Suppression)) == 0


def test_actions_without_the_csrf_token_are_refused(client: Any, alice: Tenant) -> None:
    [sid] = factories.subscribers(alice.account_id, 1)
    sign_in(client, alice.api_key)
    assert client.post(f"/console/subscribers/{sid}/unsubscribe").status_code == 400
    assert client.post(f"/console/subscribers/{sid}/erase", data={"csrf_token": "forged"}).status_code == 400
    with db.session_scope() as s:
        assert s.get(Subscriber, sid).status == "active"


def test_entries_sharing_an_instant_are_never_split_across_pages(client: Any, alice: Tenant) -> None:
    from audience.timeline import timeline

    [sid] = factories.subscribers(alice.account_id, 1)
    now = utcnow()
    with db.session_scope() as s:
        record_event(s, account_id=alice.account_id, subscriber_id=sid, name="newest", now=now)
        for name in ("tie_a", "tie_b"):
            record_event(s, account_id=alice.account_id, subscriber_id=sid, name=name, now=now,
                         occurred_at=now - timedelta(hours=1))
        first = timeline(s, alice.account_id, sid, limit=2)
        assert [e.title for e in first.entries] == ["newest"] and first.older is not None
        second = timeline(s, alice.account_id, sid, limit=2, before=first.older)
        assert sorted(e.title for e in second.entries) == ["tie_a", "tie_b"] and second.older is None
