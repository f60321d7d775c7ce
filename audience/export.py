"""Everything held about one subscriber, as one JSON document (a data subject's access request).

One document, not pages: a person's history is what one person did (a few
thousand events at most in practice), and a request for it wants all of it at
once. Each list is read in one query, ordered by id.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from audience import traces
from audience.subscribers import get_subscriber
from core.address_hash import address_hash
from models import (
    Enrollment,
    Event,
    EventDelivery,
    InboundEvent,
    Message,
    SubscriberScore,
    Suppression,
    Topic,
    TopicSubscription,
    WebhookDelivery,
)


def _row(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: _plain(getattr(row, name)) for name in names}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _rows(session: Session, model: Any, condition: Any, names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [_row(r, names) for r in session.scalars(select(model).where(condition).order_by(model.id))]


def export_subscriber(session: Session, account_id: int, subscriber_id: int, erasure_key: bytes) -> dict[str, Any]:
    """The subscriber's profile and every row about them (see audience.traces for
    the rows that name them only in text); SubscriberNotFoundError for another
    account's id."""
    person = get_subscriber(session, account_id, subscriber_id)
    topics = session.execute(
        select(Topic.key, Topic.name, TopicSubscription.status, TopicSubscription.updated_at)
        .join(Topic, Topic.id == TopicSubscription.topic_id)
        .where(TopicSubscription.subscriber_id == person.id, TopicSubscription.account_id == account_id)
        .order_by(Topic.key)).all()
    return {
        "subscriber": _row(person, ("id", "email", "first_name", "last_name", "timezone", "status", "attributes",
                                    "tags", "created_at", "updated_at"))
        | {"topics": [{"key": t.key, "name": t.name, "status": t.status, "updated_at": _plain(t.updated_at)}
                      for t in topics]},
        "events": _rows(session, Event, (Event.account_id == account_id) & (Event.subscriber_id == person.id),
                        ("id", "name", "occurred_at", "source", "message_id", "value", "properties")),
        "messages": _rows(session, Message, (Message.account_id == account_id) & (Message.subscriber_id == person.id),
                          ("id", "sequence_id", "step_id", "variant", "to_email", "subject", "status", "provider",
                           "error", "created_at", "sent_at")),
        "enrollments": _rows(session, Enrollment,
                             (Enrollment.account_id == account_id) & (Enrollment.subscriber_id == person.id),
                             ("id", "sequence_id", "run", "status", "current_step", "exit_reason", "enrolled_at",
                              "completed_at")),
        "scores": _rows(session, SubscriberScore,
                        (SubscriberScore.account_id == account_id) & (SubscriberScore.subscriber_id == person.id),
                        ("churn_risk", "engagement", "best_send_hour", "scored_at")),
        "suppressions": _rows(session, Suppression,
                              traces.suppressions(account_id, person.email, address_hash(erasure_key, person.email)),
                              ("id", "email", "reason", "created_at")),
        "webhook_deliveries": _rows(session, WebhookDelivery,
                                    traces.webhook_deliveries(account_id, person.id, person.email),
                                    ("id", "url", "payload", "status", "created_at", "delivered_at")),
        "inbound_events": _rows(session, InboundEvent, traces.inbound_events(account_id, person.id, person.email),
                                ("id", "provider", "kind", "occurred_at", "payload", "received_at")),
        "event_deliveries": [
            _row(d, ("id", "subscription_id", "status", "created_at", "delivered_at"))
            | {"events": traces.events_of(d.payload, person.id)}
            for d in traces.find(session, EventDelivery, traces.event_deliveries(account_id, person.email))],
    }
