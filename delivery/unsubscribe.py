"""Unsubscribing: the subscriber's status, the suppression list, and every running
enrollment end together (likewise for a hard bounce), in one transaction, so no later email can slip out.

Leaving one topic (the preference page) is smaller: the membership becomes
``left`` and the sender stops that topic's emails (delivery.sender); everything
else the reader gets goes on."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from analytics.events import record_event, record_message_event
from audience.fields import address_key
from audience.subscribers import get_subscriber
from audience.topics import leave, subscriber_topics
from core.flow import ending_kind, record
from delivery.links import linked_message
from delivery.tracking import Link
from models import Enrollment, Message, Subscriber, Suppression
from models.bulk import insert_ignoring_conflicts


def suppress_address(session: Session, account_id: int, key: str, reason: str, now: datetime) -> bool:
    """Add the address to the account's suppression list; ``key`` is already in the
    form the sender compares (audience.fields.address_key, which each caller applies
    once). True when it was not on it."""
    return bool(insert_ignoring_conflicts(session, Suppression, [
        {"account_id": account_id, "email": key, "reason": reason, "created_at": now}], Suppression.id))


def end_enrollments(session: Session, subscriber_id: int, reason: str, now: datetime) -> int:
    """End the subscriber's running enrollments, each recorded as left at its step (core.flow)."""
    ended = session.execute(
        update(Enrollment)
        .where(Enrollment.subscriber_id == subscriber_id, Enrollment.status.in_(("active", "paused")))
        .values(status="exited", exit_reason=reason, next_run_at=None, completed_at=now, claimed_until=None)
        .returning(Enrollment.account_id, Enrollment.sequence_id, Enrollment.current_step)
        .execution_options(synchronize_session=False)
    ).all()
    record(session, [(a, s, p, ending_kind("exited", reason), 1) for a, s, p in ended], now)
    return len(ended)


def stop_sending(session: Session, message: Message, status: str, reason: str, now: datetime) -> None:
    subscriber = session.scalar(select(Subscriber).where(Subscriber.id == message.subscriber_id,
                                                         Subscriber.account_id == message.account_id))
    if subscriber is not None and subscriber.status == "active":
        subscriber.status = status
    suppress_address(session, message.account_id, address_key(message.to_email), reason, now)
    end_enrollments(session, message.subscriber_id, reason, now)


def bounce_by_message(session: Session, message_id: int, error: str, now: datetime) -> None:
    """A hard bounce: suppress the address and end the subscriber's enrollments."""
    message = session.get(Message, message_id)
    if message is None:
        return
    stop_sending(session, message, "bounced", "bounced", now)
    record_message_event(session, message_id, "bounced", now, properties={"bounce_type": "hard", "error": error[:500]},
                         source="smtp")


def unsubscribe_by_link(session: Session, link: Link, now: datetime, source: str = "link") -> bool:
    """Unsubscribe the recipient of the message ``link`` names (delivery.links);
    False when it acts on nothing: the message is gone (its subscriber erased),
    or the link may not act."""
    message = linked_message(session, link)
    if message is None:
        return False
    stop_sending(session, message, "unsubscribed", "unsubscribed", now)
    record_message_event(session, message.id, "unsubscribed", now, properties={"via": source}, source="tracking")
    return True


def unsubscribe_subscriber(session: Session, account_id: int, subscriber_id: int, now: datetime,
                           via: str = "api") -> Subscriber:
    """An operator unsubscribes the person (they asked by other means): what their own
    click does (status, suppression, enrollments ended, in the caller's transaction),
    recorded as an ``unsubscribed`` event with no message. SubscriberNotFoundError for
    another account's id. A bounced or complained status is kept: it says more."""
    subscriber = get_subscriber(session, account_id, subscriber_id)
    if subscriber.status in ("active", "pending"):
        subscriber.status = "unsubscribed"
        subscriber.updated_at = now
    suppress_address(session, account_id, address_key(subscriber.email), "unsubscribed", now)
    end_enrollments(session, subscriber.id, "unsubscribed", now)
    record_event(session, account_id=account_id, subscriber_id=subscriber.id, name="unsubscribed", now=now,
                 source=via, properties={"via": via})
    session.flush()
    return subscriber


def topics_by_link(session: Session, link: Link) -> list[dict[str, object]] | None:
    """The topics the recipient of the linked message is in (for the preference
    page), or None when the link acts on nothing."""
    message = linked_message(session, link)
    if message is None:
        return None
    return subscriber_topics(session, message.account_id, message.subscriber_id, status="subscribed")


def leave_topic_by_link(session: Session, link: Link, topic_id: int, now: datetime) -> str | None:
    """The recipient of the linked message leaves one topic; returns its name, or
    None when they were not in it (or the link acts on nothing)."""
    message = linked_message(session, link)
    if message is None:
        return None
    names = {t["id"]: t["name"] for t in subscriber_topics(session, message.account_id, message.subscriber_id,
                                                             status="subscribed")}
    if topic_id not in names or not leave(session, message.account_id, message.subscriber_id, [topic_id], now):
        return None
    return str(names[topic_id])
