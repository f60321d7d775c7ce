"""The timer's two steps run in-process, with time injected."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import event, select

from models import WebhookDelivery, db
from sequencing.claims import claim_due_enrollments
from sequencing.engine import advance_enrollments
from tests.support import factories


def run_due(now: datetime) -> list[int]:
    """Claim everything due at ``now`` and advance it as one batch, each step in its
    own transaction as the tick and advance tasks run them; the messages queued."""
    with db.session_scope() as s:
        ids = claim_due_enrollments(s, now, 10_000)
    if not ids:
        return []
    with db.session_scope() as s:
        return advance_enrollments(s, ids, now).message_ids


def webhook_calls(account_id: int, urls: list[str], now: datetime, payload: dict[str, Any] | None = None,
                  prefix: str = "user") -> tuple[list[int], list[int]]:
    """One subscriber per URL through a one-step webhook sequence, advanced at ``now``:
    (subscriber ids, webhook delivery ids), both in URL order. A second call in the
    same account needs a subscriber ``prefix`` of its own."""
    subs = factories.subscribers(account_id, len(urls), prefix=prefix)
    step: dict[str, Any] = {"type": "webhook"}
    if payload is not None:
        step["payload"] = payload
    for url, sub in zip(urls, subs):
        factories.enroll(account_id, factories.sequence(account_id, [{**step, "url": url}]), [sub], now)
    with db.session_scope() as s:
        claimed = claim_due_enrollments(s, now, 100)
    with db.session_scope() as s:
        ids = advance_enrollments(s, claimed, now).webhook_ids
    with db.session_scope() as s:
        by_url = {r.url: r.id for r in s.scalars(select(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))}
    return subs, [by_url[url] for url in urls]


@contextmanager
def on_each_statement(callback: Callable[..., None]) -> Iterator[None]:
    """``callback(connection, cursor, statement, parameters, ...)`` before each
    statement the process's engine runs meanwhile (SQLAlchemy's before_cursor_execute)."""
    engine = db.get_engine()
    event.listen(engine, "before_cursor_execute", callback)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", callback)
