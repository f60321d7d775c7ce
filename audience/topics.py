"""Subscription topics (a newsletter, product updates, ...) and who is in each.

A subscriber is in a topic while their ``topic_subscriptions`` row says
``subscribed``. Leaving (the preference page) sets ``left``, and the row is kept:
a bulk add or a form cannot put a reader back into a topic they left, only the
reader's own confirmation (audience.opt_in) or the account setting one
subscriber's ``topics`` explicitly, as it may set their status.

Every function takes the caller's ``account_id`` and filters on it: another
account's topic is one that does not exist.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, String, any_, bindparam, cast, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from audience.errors import AudienceError
from audience.fields import address_key
from core.errors import InvalidFieldError
from models import Sequence, Subscriber, Topic, TopicSubscription
from models.bulk import ids_param, insert_ignoring_conflicts
from models.topic import TOPIC_SUBSCRIPTION_STATUSES

KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
MAX_PER_CALL = 10_000


class TopicNotFoundError(AudienceError):
    """No such topic in the caller's account."""


class TopicInUseError(AudienceError):
    """The topic is targeted by sequences and cannot be deleted."""


class DuplicateTopicError(AudienceError):
    """The account already has a topic with this key."""


def clean_key(value: Any, field: str = "key") -> str:
    """A topic key as the API, sequences and forms name it: lower-case letters,
    digits, ``-`` and ``_``, at most 100."""
    if not isinstance(value, str) or not KEY.fullmatch(value):
        raise InvalidFieldError(field, "Must be 1-100 lower-case letters, digits, '-' or '_', starting with a letter "
                                       "or digit.")
    return value


def get_topic(session: Session, account_id: int, topic_id: int) -> Topic:
    topic = session.scalar(select(Topic).where(Topic.id == topic_id, Topic.account_id == account_id))
    if topic is None:
        raise TopicNotFoundError(f"Topic {topic_id} not found.")
    return topic


def member_counts(session: Session, account_id: int, topic_id: int) -> dict[str, int]:
    """How many are subscribed to the topic and how many left it."""
    counts = dict(session.execute(select(TopicSubscription.status, func.count()).where(
        TopicSubscription.account_id == account_id, TopicSubscription.topic_id == topic_id)
        .group_by(TopicSubscription.status)).all())
    return {status: int(counts.get(status, 0)) for status in TOPIC_SUBSCRIPTION_STATUSES}


def create_topic(session: Session, account_id: int, data: dict[str, Any], now: datetime) -> Topic:
    key = clean_key(data["key"])
    if session.scalar(select(Topic.id).where(Topic.account_id == account_id, Topic.key == key)) is not None:
        raise DuplicateTopicError(f"A topic with key {key!r} already exists.")
    topic = Topic(account_id=account_id, key=key, name=data["name"], description=data.get("description"),
                  created_at=now)
    session.add(topic)
    session.flush()
    return topic


def update_topic(session: Session, account_id: int, topic_id: int, data: dict[str, Any]) -> Topic:
    """Change the name or description; the key stays, since sequences and broadcasts name it."""
    topic = get_topic(session, account_id, topic_id)
    for name in ("name", "description"):
        if name in data:
            setattr(topic, name, data[name])
    session.flush()
    return topic


def sequences_targeting(session: Session, account_id: int, key: str) -> list[int]:
    """Ids of the account's sequences whose ``settings.topic`` is ``key`` (a Python
    filter: an account has tens of sequences, and JSON paths differ by dialect)."""
    rows = session.execute(select(Sequence.id, Sequence.settings).where(Sequence.account_id == account_id))
    return [sequence_id for sequence_id, settings in rows if (settings or {}).get("topic") == key]


def delete_topic(session: Session, account_id: int, topic_id: int) -> None:
    """Delete the topic and its memberships; refused while a sequence targets it
    (its emails would stop without a word)."""
    topic = get_topic(session, account_id, topic_id)
    using = sequences_targeting(session, account_id, topic.key)
    if using:
        raise TopicInUseError(f"Sequences {', '.join(map(str, using))} target this topic; change them first.")
    session.delete(topic)
    session.flush()


def topics_by_key(session: Session, account_id: int, keys: list[Any], field: str = "topics") -> dict[str, int]:
    """key -> topic id for each key; an unknown or malformed key is an
    InvalidFieldError naming its position (``topics.1``)."""
    if not isinstance(keys, list):
        raise InvalidFieldError(field, "Must be a list of topic keys.")
    if len(keys) > 100:
        raise InvalidFieldError(field, "At most 100 topics.")
    for i, key in enumerate(keys):
        clean_key(key, f"{field}.{i}")
    found = dict(session.execute(select(Topic.key, Topic.id).where(
        Topic.account_id == account_id, Topic.key.in_(set(keys)))).all()) if keys else {}
    for i, key in enumerate(keys):
        if key not in found:
            raise InvalidFieldError(f"{field}.{i}", f"Unknown topic {key!r}.")
    return {key: found[key] for key in keys}


def subscriber_topics(session: Session, account_id: int, subscriber_id: int,
                      status: str | None = None) -> list[dict[str, Any]]:
    """The subscriber's topics, each ``{"id", "key", "name", "description", "status"}``."""
    query = (select(Topic.id, Topic.key, Topic.name, Topic.description, TopicSubscription.status)
             .join(TopicSubscription, TopicSubscription.topic_id == Topic.id)
             .where(TopicSubscription.subscriber_id == subscriber_id, TopicSubscription.account_id == account_id,
                    Topic.account_id == account_id)
             .order_by(Topic.name, Topic.id))
    if status is not None:
        query = query.where(TopicSubscription.status == status)
    return [row._asdict() for row in session.execute(query)]


def join(session: Session, account_id: int, subscriber_ids: Iterable[int], topic_ids: Iterable[int], now: datetime,
         *, rejoin: bool) -> int:
    """Put the subscribers in the topics; returns how many memberships began.
    ``rejoin``: also those who left (the reader confirmed, or the account set one
    subscriber's topics); without it a ``left`` row stays as it is."""
    subscriber_ids, topic_ids = sorted(set(subscriber_ids)), sorted(set(topic_ids))
    if not subscriber_ids or not topic_ids:
        return 0
    rows = [{"account_id": account_id, "topic_id": t, "subscriber_id": s, "status": "subscribed",
             "created_at": now, "updated_at": now} for t in topic_ids for s in subscriber_ids]
    began = len(insert_ignoring_conflicts(session, TopicSubscription, rows, TopicSubscription.id))
    if rejoin:
        began += session.execute(
            update(TopicSubscription)
            .where(TopicSubscription.account_id == account_id, TopicSubscription.topic_id.in_(topic_ids),
                   TopicSubscription.subscriber_id.in_(subscriber_ids), TopicSubscription.status == "left")
            .values(status="subscribed", updated_at=now).execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
    return began


def leave(session: Session, account_id: int, subscriber_id: int, topic_ids: Iterable[int], now: datetime) -> int:
    """Mark the subscriber's memberships of ``topic_ids`` as left; returns how many."""
    topic_ids = list(topic_ids)
    if not topic_ids:
        return 0
    return int(session.execute(
        update(TopicSubscription)
        .where(TopicSubscription.account_id == account_id, TopicSubscription.subscriber_id == subscriber_id,
               TopicSubscription.topic_id.in_(topic_ids), TopicSubscription.status == "subscribed")
        .values(status="left", updated_at=now).execution_options(synchronize_session=False)
    ).rowcount)  # type: ignore[attr-defined]


def set_topics(session: Session, account_id: int, subscriber_id: int, keys: list[Any], now: datetime) -> None:
    """The account says which topics one subscriber is in (``topics`` on the
    subscriber's POST or PATCH, replacing like ``tags``): the listed ones become
    subscribed, the others they were in become left."""
    wanted = set(topics_by_key(session, account_id, keys).values())
    current = {row["id"] for row in subscriber_topics(session, account_id, subscriber_id, status="subscribed")}
    join(session, account_id, [subscriber_id], wanted, now, rejoin=True)
    leave(session, account_id, subscriber_id, current - wanted, now)


def add_many(session: Session, account_id: int, topic_id: int, subscriber_ids: list[Any], emails: list[Any],
             now: datetime) -> tuple[int, int]:
    """Put existing subscribers (by id or address) in the topic; returns (added,
    skipped): unknown ids and addresses, those already in it, and those who left it."""
    get_topic(session, account_id, topic_id)
    requested = len(subscriber_ids) + len(emails)
    if requested > MAX_PER_CALL:
        raise InvalidFieldError("subscriber_ids" if subscriber_ids else "emails",
                                f"At most {MAX_PER_CALL} subscribers per request.")
    ids = {i for i in subscriber_ids if type(i) is int and 0 < i < 2**31}
    keys = {address_key(e) for e in emails if isinstance(e, str) and "\x00" not in e}
    found: set[int] = set()
    if ids:
        found.update(session.scalars(select(Subscriber.id).where(Subscriber.account_id == account_id,
                                                                 Subscriber.id.in_(ids))))
    if keys:
        found.update(session.scalars(select(Subscriber.id).where(Subscriber.account_id == account_id,
                                                                 Subscriber.email.in_(keys))))
    added = join(session, account_id, found, [topic_id], now, rejoin=False)
    return added, requested - added


@lru_cache(maxsize=2)
def _members_statement(dialect: str) -> Any:
    """Built once per dialect (building the expression cost more than running it).
    PostgreSQL takes the ids as one array literal (models.bulk.id_array): one
    parameter, and the planner knows how many there are."""
    statement = (select(TopicSubscription.subscriber_id)
                 .join(Topic, Topic.id == TopicSubscription.topic_id)
                 .where(Topic.account_id == bindparam("account_id"), Topic.key == bindparam("key"),
                        TopicSubscription.status == "subscribed"))
    if dialect == "postgresql":
        ids = cast(bindparam("ids", type_=String), ARRAY(BigInteger))
        return statement.where(TopicSubscription.subscriber_id == any_(ids))
    return statement.where(TopicSubscription.subscriber_id.in_(bindparam("ids", expanding=True)))


def members_of(session: Session, account_id: int, key: str, subscriber_ids: Iterable[int]) -> set[int]:
    """Which of ``subscriber_ids`` are subscribed to the account's topic ``key``
    (the send path asks once per batch and topic)."""
    subscriber_ids = list(subscriber_ids)
    if not subscriber_ids:
        return set()
    dialect = session.get_bind().dialect.name
    return set(session.execute(_members_statement(dialect), {"account_id": account_id, "key": key,
                                                             "ids": ids_param(dialect, subscriber_ids)})
               .scalars())
