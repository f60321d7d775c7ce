"""A person's data: the export holds every kind of row about them, and erasure
leaves no copy of their address in any column of any table (read from the
database's own catalogue, so a table added later cannot be missed), while the
address, added again later, is still refused at send: the real SMTP sink gets
nothing. The person's history is made by the platform's own paths: the API, the
engine and a real SMTP send, a webhook step, an event subscription's feed."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from models import InboundEvent, Job, Message, SubscriberScore, Topic, TopicSubscription, db
from models.base import utcnow
from models.event import is_event_partition
from tests.support import factories
from tests.support.engine import run_due
from tests.support.sending import send_in_process
from webhooks import event_feed
from webhooks.event_subscriptions import create_subscription

ADDRESS = "ada.lovelace@bücher.test"
PUNYCODE = "ada.lovelace@xn--bcher-kva.test"


def _history(client: Any, tenant: Any) -> tuple[int, int]:
    """The person, with a row of every kind about them; returns (subscriber id, sequence id)."""
    created = client.post("/api/v1/subscribers", json={
        "email": ADDRESS, "first_name": "Ada", "attributes": {"plan": "pro"}, "tags": ["vip"]}, headers=tenant.headers)
    assert created.status_code == 201, created.get_json()
    person = created.get_json()["id"]
    with db.session_scope() as s:
        create_subscription(s, tenant.account_id, {"url": "http://127.0.0.1:9/hook", "events": ["message.sent"]},
                            True, utcnow())
        topic = Topic(account_id=tenant.account_id, key="news", name="Newsletter")
        s.add(topic)
        s.flush()
        s.add(TopicSubscription(account_id=tenant.account_id, topic_id=topic.id, subscriber_id=person))
        s.add(Job(account_id=tenant.account_id, kind="subscriber_import", status="completed", payload=None,
                  errors=[f"row 2: {ADDRESS} is already in the file", "row 9: email: Missing data"]))
        s.add(SubscriberScore(account_id=tenant.account_id, subscriber_id=person, churn_risk=0.4, engagement=0.7,
                              best_send_hour=9, scored_at=utcnow()))
    seq = factories.sequence(tenant.account_id, [{"type": "email", "subject": "Hello {{ subscriber.first_name }}",
                                                  "text": "Hi"},
                                                 {"type": "webhook", "url": "http://127.0.0.1:9/crm"}])
    now = utcnow()
    factories.enroll(tenant.account_id, seq, [person], now)
    [message_id] = run_due(now)
    assert send_in_process([message_id])["sent"] == 1
    run_due(now + timedelta(seconds=1))  # the webhook step's call, naming the address
    assert client.post("/api/v1/events", json={"email": ADDRESS, "name": "purchase", "properties": {
        "note": f"bought by {ADDRESS}"}}, headers=tenant.headers).status_code in (200, 201, 202)
    with db.session_scope() as s:
        key = s.scalar(select(Message.idempotency_key).where(Message.id == message_id))
        s.execute(insert(InboundEvent), [
            # A provider's raw event, found by our outbox key it echoed back
            {"account_id": tenant.account_id, "provider": "sendgrid", "provider_event_id": "sg-1", "kind": "delivered",
             "message_key": key, "payload": {"email": PUNYCODE, "event": "delivered"}, "status": "processed"},
            # ... and one found only by the address in it (another spelling, escaped as JSON may store it)
            {"account_id": tenant.account_id, "provider": "postmark", "provider_event_id": "pm-1", "kind": "bounced",
             "payload": {"Recipient": ADDRESS.upper(), "Details": "mailbox full"}, "status": "unmatched"},
        ])
    with db.session_scope() as s:
        event_feed.feed(s, s.execute(text("SELECT id FROM event_subscriptions")).scalar_one(), utcnow())
    assert client.post("/api/v1/suppressions", json={"email": ADDRESS}, headers=tenant.headers).status_code == 201
    return person, seq


def _columns_holding(address: str) -> list[str]:
    """Every text, JSON or binary column of every table that holds ``address`` in any
    spelling, read from PostgreSQL's catalogue (so new tables are included)."""
    forms = {address.lower(), PUNYCODE.lower(), "ada.lovelace@b\\u00fccher.test"}
    found = []
    with db.session_scope() as s:
        columns = s.execute(text(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c"
            " JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema"
            " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
            " AND c.data_type IN ('text', 'character varying', 'json', 'jsonb', 'bytea', 'ARRAY')")).all()
        assert len(columns) > 50, "the catalogue was read"
        for table, column, kind in columns:
            if is_event_partition(table):
                continue  # read through events, their parent (migration 0034)
            value = f'convert_from("{column}", \'UTF8\')' if kind == "bytea" else f'CAST("{column}" AS text)'
            for form in forms:
                if s.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{table}" WHERE lower({value}) LIKE :f)'),
                             {"f": f"%{form}%"}).scalar():
                    found.append(f"{table}.{column}")
    return sorted(set(found))


def test_the_export_holds_every_kind_of_row_and_erasure_leaves_no_trace_yet_keeps_the_address_suppressed(
        client, alice, bob, smtp):
    person, seq = _history(client, alice)
    assert client.get(f"/api/v1/subscribers/{person}/export", headers=bob.headers).status_code == 404
    response = client.get(f"/api/v1/subscribers/{person}/export", headers=alice.headers)
    assert response.status_code == 200
    export = response.get_json()
    assert export["subscriber"]["email"] == ADDRESS and export["subscriber"]["attributes"] == {"plan": "pro"}
    assert export["subscriber"]["tags"] == ["vip"] and [t["key"] for t in export["subscriber"]["topics"]] == ["news"]
    assert {e["name"] for e in export["events"]} >= {"sent", "purchase"}
    assert [m["subject"] for m in export["messages"]] == ["Hello {{ subscriber.first_name }}"]  # as stored
    assert [e["sequence_id"] for e in export["enrollments"]] == [seq]
    assert export["scores"][0]["churn_risk"] == 0.4
    assert [s["email"] for s in export["suppressions"]] == [ADDRESS]
    assert len(export["webhook_deliveries"]) == 1 and export["webhook_deliveries"][0]["payload"]["subscriber"]["email"] == ADDRESS
    assert sorted(e["provider"] for e in export["inbound_events"]) == ["postmark", "sendgrid"]
    assert [e["type"] for d in export["event_deliveries"] for e in d["events"]] == ["message.sent"]
    assert _columns_holding(ADDRESS) == ["event_deliveries.payload", "events.properties", "inbound_events.payload",
                                        "jobs.errors", "messages.to_email", "subscribers.email", "suppressions.email",
                                        "webhook_deliveries.payload"], "the scan finds each copy before the erasure"

    assert client.post(f"/api/v1/subscribers/{person}/erase", headers=bob.headers).status_code == 404
    assert client.post(f"/api/v1/subscribers/{person}/erase", headers=alice.headers).status_code == 204
    assert _columns_holding(ADDRESS) == []
    assert client.get(f"/api/v1/subscribers/{person}", headers=alice.headers).status_code == 404
    listed = client.get("/api/v1/suppressions", headers=alice.headers).get_json()
    assert [(s["email"], s["erased"], s["reason"]) for s in listed] == [(None, True, "manual")]
    with db.session_scope() as s:
        assert s.scalar(select(InboundEvent.provider_event_id).where(InboundEvent.provider == "sendgrid")) == "sg-1"
        assert s.scalar(select(Job.errors)) == ["row 2: erased is already in the file", "row 9: email: Missing data"]

    again = client.post("/api/v1/subscribers", json={"email": PUNYCODE.upper()}, headers=alice.headers)
    assert again.status_code == 201
    factories.enroll(alice.account_id, seq, [again.get_json()["id"]], utcnow())
    [message_id] = run_due(utcnow())
    smtp.handler.received.clear()
    send_in_process([message_id])
    assert smtp.handler.received == []
    with db.session_scope() as s:
        row = s.get(Message, message_id)
        assert (row.status, row.error) == ("suppressed", "address on the suppression list")


def test_delete_also_scrubs_and_an_erasure_without_a_prior_suppression_adds_a_hashed_one(client, alice, smtp):
    created = client.post("/api/v1/subscribers", json={"email": "grace@example.test"}, headers=alice.headers)
    person = created.get_json()["id"]
    assert client.post(f"/api/v1/subscribers/{person}/erase", headers=alice.headers).status_code == 204
    [entry] = client.get("/api/v1/suppressions", headers=alice.headers).get_json()
    assert (entry["email"], entry["erased"], entry["reason"]) == (None, True, "erased")
    other = client.post("/api/v1/subscribers", json={"email": "alan@example.test"}, headers=alice.headers).get_json()
    assert client.delete(f"/api/v1/subscribers/{other['id']}", headers=alice.headers).status_code == 204
    assert len(client.get("/api/v1/suppressions", headers=alice.headers).get_json()) == 1, \
        "a deletion keeps no suppression the account had not made"
