"""Outgoing webhook steps on the ``webhooks`` queue."""
from __future__ import annotations

from datetime import timedelta

from models.base import utcnow
from models.db import session_scope
from settings import get_settings
from tasks.app import app
from tasks.batching import TICK_CLAIM_LIMIT
from webhooks import outbound


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
