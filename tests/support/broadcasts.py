"""Broadcasts for tests: an account's topic with subscribers in it, a broadcast
made and scheduled through the domain functions, and its steps and sends run
in process with the clock injected."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from broadcasts import lifecycle
from broadcasts.sending import claim_due, run_step
from content.preflight import Spamd
from delivery.outbox import claim_for_dispatch
from models import Broadcast, Message, Topic, TopicSubscription, db
from tests.support.sending import send_in_process

NO_SPAMD = Spamd("127.0.0.1", 1)  # nothing listens there: the check scores without SpamAssassin


def topic_with(account_id: int, subscriber_ids: list[int], key: str = "news") -> str:
    with db.session_scope() as s:
        topic = Topic(account_id=account_id, key=key, name=key.title())
        s.add(topic)
        s.flush()
        s.add_all([TopicSubscription(account_id=account_id, topic_id=topic.id, subscriber_id=sid)
                   for sid in subscriber_ids])
    return key


def scheduled(account_id: int, now: datetime, **fields: Any) -> int:
    """A broadcast to the account's ``news`` topic (unless told otherwise), scheduled at ``now``."""
    body = {"name": "December news", "topic": "news", "subject": "News for {{ subscriber.first_name }}",
            "html": '<p>Hello, <a href="https://shop.example.test/x">read</a></p>', **fields}
    with db.session_scope() as s:
        row = lifecycle.create(s, account_id, body, now)
        lifecycle.schedule(s, account_id, row.id, now, None, NO_SPAMD, override_preflight=True)
        return row.id


def step(now: datetime) -> str | None:
    """Claim and run one due broadcast step at ``now``, as the beat task does."""
    with db.session_scope() as s:
        claimed = claim_due(s, now)
    if claimed is None:
        return None
    with db.session_scope() as s:
        return run_step(s, claimed, now)


def send_due(now: datetime) -> int:
    """Hand every due message to the send path at ``now`` (the tick's sweep) and send it."""
    with db.session_scope() as s:
        ids = claim_for_dispatch(s, now, 100_000)
    for start in range(0, len(ids), 50):
        send_in_process(ids[start:start + 50], at=now)
    return len(ids)


def broadcast(broadcast_id: int) -> Broadcast:
    with db.session_scope() as s:
        row = s.get(Broadcast, broadcast_id)
        s.expunge(row)
        return row


def messages(broadcast_id: int) -> list[Message]:
    with db.session_scope() as s:
        rows = list(s.scalars(select(Message).where(Message.broadcast_id == broadcast_id).order_by(Message.id)))
        s.expunge_all()
        return rows
