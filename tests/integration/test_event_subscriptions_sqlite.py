"""Event subscriptions and erasure on the embedded SQLite database (`make run`):
the feed batches events after its cursor (xact is 0 there: ids commit in order),
the batch is called and recorded (keeping only event ids once delivered), and an
erasure keeps the address suppressed by its hash, all on SQLite."""
from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select, text

from analytics.events import record_event
from audience.erasure import erase_subscriber
from core.address_hash import erasure_key
from delivery.suppressions import erased_among
from models import EventDelivery, Subscriber, Suppression, db
from models.base import utcnow
from tests.support.database import embedded_sqlite
from tests.support.provider_server import ProviderServer
from webhooks import event_calls, event_feed, outbound
from webhooks.event_subscriptions import create_subscription

KEY = "sqlite-test-secret-key-0123456789"


def test_the_feed_calls_and_erasure_work_on_sqlite(tmp_path: Path):
    receiver = ProviderServer()
    receiver.start()
    try:
        with embedded_sqlite(tmp_path):
            now = utcnow()
            with db.session_scope() as s:
                account = s.execute(text("INSERT INTO accounts (name, from_email, from_name, created_at)"
                                         " VALUES ('a', 'a@x.test', 'A', :t) RETURNING id"), {"t": now}).scalar_one()
                person = Subscriber(account_id=account, email="ada@example.test")
                s.add(person)
                s.flush()
                person_id = person.id
                record_event(s, account_id=account, subscriber_id=person_id, name="sent", now=now)  # before: not sent
            with db.session_scope() as s:
                row, _ = create_subscription(s, account, {"url": receiver.base_url, "events": ["message.opened"]},
                                             True, now)
                sid = row.id
            with db.session_scope() as s:
                opened = record_event(s, account_id=account, subscriber_id=person_id, name="opened", now=now)
            with db.session_scope() as s:
                [batch] = event_feed.feed(s, sid, utcnow())
            with db.session_scope() as s:
                assert event_feed.feed(s, sid, utcnow()) == []
                calls = event_calls.claim(s, [batch], utcnow())
            results = [outbound.call(c, KEY, utcnow(), True) for c in calls]
            with db.session_scope() as s:
                event_calls.record(s, results, utcnow())
            [body] = [json.loads(r.body) for r in receiver.requests]
            assert [e["id"] for e in body["events"]] == [f"evt_{opened.event_id}"]
            with db.session_scope() as s:
                erase_subscriber(s, account, person_id, erasure_key(KEY), utcnow(), suppress=True)
            with db.session_scope() as s:
                row = s.get(EventDelivery, batch)
                assert (row.status, row.payload) == ("delivered", {"events": [
                    {"id": f"evt_{opened.event_id}", "type": "message.opened"}]}), "delivered: ids and types only"
                assert s.scalar(select(Suppression.email_hash)) is not None
                assert erased_among(s.connection(), {"ada@example.test", "bob@example.test"}, KEY) == {
                    (account, "ada@example.test")}
    finally:
        receiver.stop()
