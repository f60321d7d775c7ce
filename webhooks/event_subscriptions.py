"""Event subscriptions as the account manages them: create, read, change, delete.

The URL passes the SSRF guard (core.netguard) when it is saved, and again at every
call (webhooks.event_calls), as webhook steps' URLs do. The signing secret is the
caller's or a random one, sealed at rest (models.sealed) and returned only by
``create_subscription``: the API shows it once. A new subscription starts at the
account's newest events (nothing recorded before it is delivered), and a changed
URL or event list takes effect from the next batch.
"""
from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from analytics.rollups import event_horizon
from core.errors import InvalidFieldError
from core.netguard import UnsafeTargetError, check_target
from models import Event, EventDelivery, EventSubscription, StepTransition
from webhooks.event_types import EVENT_TYPES

SECRET_PREFIX = "whsec_"  # as the account's webhook secret (accounts.webhook_secret)
MAX_PER_ACCOUNT = 20
MIN_SECRET, MAX_SECRET = 16, 200


class SubscriptionNotFoundError(LookupError):
    """No such subscription in this account."""


class TooManySubscriptionsError(ValueError):
    """The account has as many subscriptions as it may."""


class DeliveryNotFoundError(LookupError):
    """No such batch of this subscription."""


class NotFailedError(ValueError):
    """Only a failed batch can be sent again."""


def clean_url(url: Any, allow_private: bool) -> str:
    if not isinstance(url, str) or not url.strip():
        raise InvalidFieldError("url", "Missing data for required field.")
    if len(url) > 2000:
        raise InvalidFieldError("url", "Longer than 2000 characters.")
    try:
        check_target(url.strip(), allow_private)
    except UnsafeTargetError as exc:
        raise InvalidFieldError("url", str(exc)) from None
    return url.strip()


def clean_events(events: Any) -> list[str]:
    if not isinstance(events, list) or not events:
        raise InvalidFieldError("events", "Give a non-empty list of event types.")
    for i, name in enumerate(events):
        if name not in EVENT_TYPES:
            raise InvalidFieldError(f"events.{i}", "Must be one of: " + ", ".join(EVENT_TYPES) + ".")
    return sorted(set(events))


def clean_secret(secret: Any) -> str:
    if not isinstance(secret, str) or not MIN_SECRET <= len(secret) <= MAX_SECRET or not secret.isprintable():
        raise InvalidFieldError("secret", f"Must be {MIN_SECRET} to {MAX_SECRET} printable characters.")
    return secret


def start_cursors(session: Session, account_id: int, now: datetime) -> dict[str, int]:
    """Where a new subscription starts: after every event and step transition final
    now (PostgreSQL: the horizon, analytics.rollups), or after the newest ones
    (SQLite, where xact is 0)."""
    if session.get_bind().dialect.name == "postgresql":
        after = event_horizon(session, "postgresql", now)[0] - 1
        return {"cursor_xact": after, "cursor_id": 2**62, "flow_xact": after, "flow_id": 2**62}
    newest_event = session.scalar(select(func.max(Event.id)).where(Event.account_id == account_id)) or 0
    newest_move = session.scalar(select(func.max(StepTransition.id)).where(StepTransition.account_id == account_id)) or 0
    return {"cursor_xact": 0, "cursor_id": int(newest_event), "flow_xact": 0, "flow_id": int(newest_move)}


def create_subscription(session: Session, account_id: int, data: dict[str, Any], allow_private: bool,
                        now: datetime) -> tuple[EventSubscription, str]:
    """A new subscription and its secret (shown this once)."""
    url = clean_url(data.get("url"), allow_private)
    events = clean_events(data.get("events"))
    secret = clean_secret(data["secret"]) if data.get("secret") is not None else SECRET_PREFIX + secrets.token_urlsafe(32)
    count = session.scalar(select(func.count()).select_from(EventSubscription)
                           .where(EventSubscription.account_id == account_id)) or 0
    if count >= MAX_PER_ACCOUNT:
        raise TooManySubscriptionsError(f"An account may have at most {MAX_PER_ACCOUNT} event subscriptions.")
    row = EventSubscription(account_id=account_id, url=url, events=events, secret=secret, paused=False,
                            created_at=now, updated_at=now, **start_cursors(session, account_id, now))
    session.add(row)
    session.flush()
    return row, secret


def get_subscription(session: Session, account_id: int, subscription_id: int) -> EventSubscription:
    row = session.scalar(select(EventSubscription).where(EventSubscription.id == subscription_id,
                                                         EventSubscription.account_id == account_id))
    if row is None:
        raise SubscriptionNotFoundError("Event subscription not found.")
    return row


def update_subscription(session: Session, account_id: int, subscription_id: int, data: dict[str, Any],
                        allow_private: bool, now: datetime) -> EventSubscription:
    """Change ``url``, ``events``, ``secret`` or ``paused``; a paused subscription
    keeps its place and delivers what happened meanwhile once resumed."""
    row = get_subscription(session, account_id, subscription_id)
    if "url" in data:
        row.url = clean_url(data["url"], allow_private)
    if "events" in data:
        row.events = clean_events(data["events"])
    if "secret" in data:
        row.secret = clean_secret(data["secret"])
    if "paused" in data:
        if not isinstance(data["paused"], bool):
            raise InvalidFieldError("paused", "Not a valid boolean.")
        row.paused = data["paused"]
    row.updated_at = now
    session.flush()
    return row


def delete_subscription(session: Session, account_id: int, subscription_id: int) -> None:
    session.delete(get_subscription(session, account_id, subscription_id))
    session.flush()


def list_subscriptions(account_id: int) -> Select[Any]:
    return select(EventSubscription).where(EventSubscription.account_id == account_id).order_by(EventSubscription.id.desc())


def delivery_counts(session: Session, subscription_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per subscription: its batches by status, and the events in the delivered ones."""
    counts: dict[int, dict[str, int]] = {i: {} for i in subscription_ids}
    for sid, status, batches, events in session.execute(
            select(EventDelivery.subscription_id, EventDelivery.status, func.count(), func.sum(EventDelivery.event_count))
            .where(EventDelivery.subscription_id.in_(list(subscription_ids)))
            .group_by(EventDelivery.subscription_id, EventDelivery.status)):
        counts[sid][status] = int(batches)
        if status == "delivered":
            counts[sid]["events_delivered"] = int(events or 0)
    return counts


def deliveries_query(account_id: int, subscription_id: int) -> Select[Any]:
    return (select(EventDelivery).where(EventDelivery.account_id == account_id,
                                        EventDelivery.subscription_id == subscription_id)
            .order_by(EventDelivery.id.desc()))


def retry_delivery(session: Session, account_id: int, subscription_id: int, delivery_id: int, now: datetime,
                   lease: timedelta) -> EventDelivery:
    """A failed batch queued again with its attempts reset (its events and their ids
    unchanged, so a receiver that saw some drops them); the caller hands it on after
    commit, and the feed's sweep does if that is lost (after ``lease``)."""
    get_subscription(session, account_id, subscription_id)
    row = session.scalar(select(EventDelivery).where(EventDelivery.id == delivery_id,
                                                     EventDelivery.subscription_id == subscription_id,
                                                     EventDelivery.account_id == account_id).with_for_update())
    if row is None:
        raise DeliveryNotFoundError("Delivery not found.")
    if row.status != "failed":
        raise NotFailedError(f"Only a failed delivery can be retried; this one is {row.status}.")
    row.status, row.attempts, row.retry_at, row.claimed_until = "queued", 0, None, now + lease
    session.flush()
    return row
