"""One subscriber at a time: create, read, change, delete, and the list query.

Every function takes the caller's ``account_id`` and filters on it, so another
account's subscriber is indistinguishable from one that does not exist.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, func, literal_column, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from audience import fields as f
from audience.errors import (
    DuplicateSubscriberError,
    InvalidSubscriberError,
    SubscriberNotFoundError,
)
from core.errors import InvalidFieldError
from core.flow import record
from models import Enrollment, Subscriber, Topic, TopicSubscription, utcnow
from models.subscriber import SUBSCRIBER_STATUSES

_CLEANERS: dict[str, Callable[[Any], Any]] = {
    "email": f.normalise_email,
    "first_name": lambda v: f.clean_name(v, "first_name"),
    "last_name": lambda v: f.clean_name(v, "last_name"),
    "timezone": f.clean_timezone,
    "tags": f.clean_tags,
}


# "pending" belongs to the subscribe form (audience.opt_in): an address waiting for
# its own confirmation, removed when it does not come. The API and imports set a
# status themselves, so they may not set that one.
SETTABLE_STATUSES = tuple(s for s in SUBSCRIBER_STATUSES if s != "pending")


def _status(value: Any) -> str:
    if value not in SETTABLE_STATUSES:
        raise InvalidFieldError("status", "Must be one of: " + ", ".join(SETTABLE_STATUSES) + ".")
    return str(value)


def clean_subscriber(data: dict[str, Any], partial: bool = False) -> dict[str, Any]:
    """Validated, normalised values for the fields present in ``data``; every bad
    field is named at once in one InvalidSubscriberError."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, value in data.items():
        try:
            if name in _CLEANERS:
                cleaned[name] = _CLEANERS[name](value)
            elif name == "attributes":
                cleaned[name] = f.clean_attributes(value, allow_null=partial)
            elif name == "status":
                cleaned[name] = _status(value)
            else:
                errors[name] = ["Unknown field."]
        except InvalidFieldError as exc:
            errors.setdefault(exc.field, []).append(exc.message)
    if not partial and "email" not in data:
        errors["email"] = ["Missing data for required field."]
    if errors:
        raise InvalidSubscriberError(errors)
    return cleaned


def _email_taken(session: Session, account_id: int, email: str, except_id: int | None = None) -> bool:
    query = select(Subscriber.id).where(Subscriber.account_id == account_id, Subscriber.email == email)
    if except_id is not None:
        query = query.where(Subscriber.id != except_id)
    return session.scalar(query.limit(1)) is not None


def create_subscriber(session: Session, account_id: int, data: dict[str, Any], now: datetime) -> Subscriber:
    """A new active subscriber. The pre-check gives a clear error; a concurrent twin
    still hits the unique key (account_id, email) at flush."""
    values = clean_subscriber(data)
    values.pop("status", None)
    if _email_taken(session, account_id, values["email"]):
        raise DuplicateSubscriberError(f"A subscriber with email {values['email']!r} already exists.")
    values = {"attributes": {}, "tags": [], **values}
    subscriber = Subscriber(account_id=account_id, status="active", created_at=now, updated_at=now, **values)
    session.add(subscriber)
    session.flush()
    return subscriber


def get_subscriber(session: Session, account_id: int, subscriber_id: int) -> Subscriber:
    # session.get answers a second lookup in one request (PATCH reads the tags
    # before updating) from the identity map; another account's row is a 404.
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None or subscriber.account_id != account_id:
        raise SubscriberNotFoundError(f"Subscriber {subscriber_id} not found.")
    return subscriber


def update_subscriber(session: Session, account_id: int, subscriber_id: int, data: dict[str, Any],
                      now: datetime) -> Subscriber:
    """Change the given fields. ``attributes`` merges key by key (null removes a
    key); ``tags`` replaces the list, since a client removing a tag sends the rest."""
    subscriber = get_subscriber(session, account_id, subscriber_id)
    values = clean_subscriber(data, partial=True)
    if "email" in values and values["email"] != subscriber.email:
        if _email_taken(session, account_id, values["email"], except_id=subscriber.id):
            raise DuplicateSubscriberError(f"A subscriber with email {values['email']!r} already exists.")
    if "attributes" in values:
        values["attributes"] = f.merge_attributes(subscriber.attributes or {}, values["attributes"])
    for name, value in values.items():
        setattr(subscriber, name, value)
    subscriber.updated_at = now
    session.flush()
    return subscriber


def delete_subscriber(session: Session, account_id: int, subscriber_id: int) -> None:
    """Delete the subscriber, relying on the schema's ON DELETE CASCADE.

    Enrollments, messages and events reference subscribers with ``ondelete=CASCADE``,
    so the one DELETE removes every running enrollment in the same transaction: no
    tick can claim an enrollment of a subscriber who is gone, and no queued message
    can be sent to them (a send already claimed finds its row missing and records
    nothing). Marking enrollments ``exited`` first would be rows deleted a moment
    later; the cost is that the message log loses this person's history, which is
    also what a deletion (erasure) request asks for.
    """
    subscriber = get_subscriber(session, account_id, subscriber_id)
    running = session.execute(
        select(Enrollment.sequence_id, Enrollment.current_step, func.count())
        .where(Enrollment.subscriber_id == subscriber.id, Enrollment.account_id == account_id,
               Enrollment.status.in_(("active", "paused")))
        .group_by(Enrollment.sequence_id, Enrollment.current_step)).all()
    # The funnel's counts keep no one's identity: they stay, with these enrollments left.
    record(session, [(account_id, sequence_id, position, "left", n) for sequence_id, position, n in running], utcnow())
    session.delete(subscriber)
    session.flush()


def _has_tag(session: Session, tag: str) -> Any:
    """JSON containment is dialect-specific: PostgreSQL's ``@>`` on JSONB, SQLite's
    ``json_each``."""
    if session.get_bind().dialect.name == "postgresql":
        return type_coerce(Subscriber.tags, JSONB).contains([tag])
    each = func.json_each(Subscriber.tags).table_valued("value")
    return exists(select(literal_column("1")).select_from(each).where(each.c.value == tag))


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_subscribers(session: Session, account_id: int, status: str | None = None, tag: str | None = None,
                     email: str | None = None, topic: str | None = None) -> Select[Any]:
    """The account's subscribers, newest first, filtered; a query for the paginator.
    ``email`` is a fragment of the address, or a whole one in any spelling;
    ``topic`` a topic's key: those subscribed to it."""
    query = select(Subscriber).where(Subscriber.account_id == account_id)
    if topic:
        query = query.where(exists(select(literal_column("1")).select_from(TopicSubscription).join(
            Topic, Topic.id == TopicSubscription.topic_id).where(
            TopicSubscription.subscriber_id == Subscriber.id, TopicSubscription.status == "subscribed",
            Topic.account_id == account_id, Topic.key == topic)))
    if status:
        query = query.where(Subscriber.status == status)
    if tag:
        query = query.where(_has_tag(session, tag))
    if email:
        query = query.where(Subscriber.email.like(f"%{_like_escape(f.address_key(email))}%", escape="\\"))
    return query.order_by(Subscriber.id.desc())
