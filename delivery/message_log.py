"""The delivery log's query: the account's messages newest first, filtered. One
function for GET /api/v1/messages and the console's message log, so both filter
the same way."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from models import Event, Message

# Filters that compare a column for equality.
EQUAL = ("sequence_id", "subscriber_id", "broadcast_id", "status")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def message_log(account_id: int, sequence_id: int | None = None, subscriber_id: int | None = None,
                broadcast_id: int | None = None, status: str | None = None, email: str | None = None,
                since: datetime | None = None, until: datetime | None = None) -> Select[Any]:
    """A query for the paginator. ``email`` is part of the recipient's address
    (case-insensitive); ``since``/``until`` bound ``created_at`` (from, inclusive;
    until, exclusive)."""
    statement = select(Message).where(Message.account_id == account_id)
    values = {"sequence_id": sequence_id, "subscriber_id": subscriber_id, "broadcast_id": broadcast_id,
              "status": status}
    for name in EQUAL:
        if values[name] is not None:
            statement = statement.where(getattr(Message, name) == values[name])
    if email:
        statement = statement.where(Message.to_email.ilike(f"%{_like_escape(email.strip())}%", escape="\\"))
    if since is not None:
        statement = statement.where(Message.created_at >= since)
    if until is not None:
        statement = statement.where(Message.created_at < until)
    return statement.order_by(Message.id.desc())


def message_events(account_id: int, message_id: int) -> Select[Any]:
    """The events recorded about one of the account's messages, oldest first."""
    return (select(Event).where(Event.account_id == account_id, Event.message_id == message_id)
            .order_by(Event.occurred_at, Event.id))
