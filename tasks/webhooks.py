"""Outgoing webhook steps and event subscriptions' batches on the ``webhooks`` queue."""
from __future__ import annotations

from datetime import timedelta

from models.base import utcnow
from models.db import session_scope
from settings import get_settings
from tasks.app import app
from tasks.batching import TICK_CLAIM_LIMIT, fan_out
from webhooks import event_calls, event_feed, outbound

EVENT_BATCHES_PER_TASK = 10  # batches of up to event_feed.BATCH events, called one after another


def claim_webhooks_for_dispatch(lease: timedelta) -> list[int]:
    with session_scope() as session:
        return outbound.claim_for_dispatch(session, utcnow(), TICK_CLAIM_LIMIT, lease)


@app.task(name="webhooks.deliver", ignore_result=True)
def deliver_webhooks(delivery_ids: list[int]) -> None:
    settings = get_settings()
    with session_scope() as session:
        calls = outbound.claim(session, delivery_ids, utcnow(), timedelta(seconds=settings.lease_seconds))
    results = [outbound.call(c, settings.secret_key, utcnow(), settings.webhook_allow_private) for c in calls]
    with session_scope() as session:
        outbound.record(session, results, utcnow())


@app.task(name="webhooks.feed_events", ignore_result=True)
def feed_events() -> dict[str, int]:
    """Beat's: batch each subscription's new events, hand the batches on after their
    commit, and hand on again batches due for a retry or whose task was lost."""
    lease = timedelta(seconds=get_settings().lease_seconds)
    batches: list[int] = []
    with session_scope() as session:
        due = event_feed.subscriptions_with_news(session)
    for subscription_id in due:
        with session_scope() as session:
            new = event_feed.feed(session, subscription_id, utcnow())
        fan_out(deliver_events, new, EVENT_BATCHES_PER_TASK)
        batches += new
    with session_scope() as session:
        again = event_calls.claim_for_dispatch(session, utcnow(), TICK_CLAIM_LIMIT, lease)
    fan_out(deliver_events, again, EVENT_BATCHES_PER_TASK)
    return {"subscriptions": len(due), "batches": len(batches), "again": len(again)}


@app.task(name="webhooks.deliver_events", ignore_result=True)
def deliver_events(delivery_ids: list[int]) -> None:
    settings = get_settings()
    with session_scope() as session:
        calls = event_calls.claim(session, delivery_ids, utcnow(), timedelta(seconds=settings.lease_seconds))
    results = [outbound.call(c, settings.secret_key, utcnow(), settings.webhook_allow_private) for c in calls]
    with session_scope() as session:
        event_calls.record(session, results, utcnow())
