"""What a verified tracking or unsubscribe link acts on (delivery.tracking signs them).

A link names the account and the message, and acts only when the message is
that account's. Links signed before links named the account carry the message
id alone. On PostgreSQL they keep working: its sequences never hand an id out
twice, so the id can only be the message the link was made for. On SQLite they
act on nothing: before migration 0013 it gave the id of a deleted newest row to
the next row, of any account, so such a link may name another tenant's message
and nothing can tell. Every email sent since carries links naming the account.

A link whose message is gone (its subscriber was erased, its account deleted)
finds nothing and changes nothing; the endpoints answer as if it had worked,
since there is no one left to write to.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.events import Recorded, record_event
from delivery.tracking import Link
from models import Message


def trusted(session: Session, link: Link) -> bool:
    """Whether ``link`` may act at all: it names its account, or this database
    never reused ids."""
    return link.account_id is not None or session.get_bind().dialect.name != "sqlite"


def linked_message(session: Session, link: Link) -> Message | None:
    """The message ``link`` acts on; None when it may not act or the message is gone."""
    if not trusted(session, link):
        return None
    query = select(Message).where(Message.id == link.message_id)
    if link.account_id is not None:
        query = query.where(Message.account_id == link.account_id)
    return session.scalars(query).first()


def record_link_event(session: Session, link: Link, name: str, now: datetime, dedup_suffix: str = "",
                      properties: dict[str, Any] | None = None) -> Recorded | None:
    """An open or a click through ``link``, de-duplicated per message as
    analytics.events.record_message_event does, and whom to wake for it
    (sequencing.intake.ingest_link_event does); None for a replay, or when it
    acts on nothing."""
    message = linked_message(session, link)
    if message is None:
        return None
    return record_event(session, account_id=message.account_id, subscriber_id=message.subscriber_id, name=name,
                        now=now, message_id=message.id, dedup_key=f"{name}:{message.id}{dedup_suffix}",
                        source="tracking", properties=properties)
