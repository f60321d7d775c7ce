"""The message log: the API's query (delivery.message_log) with its filters checked
by the API's MessageQuerySchema; dates are picked as days in the account's zone.
A message's page lists the events recorded about it."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from flask import abort, g, render_template, request
from sqlalchemy import select

from core.zones import zone
from delivery.message_log import message_events, message_log
from models import Broadcast, Message, Sequence
from models.message import MESSAGE_STATUSES
from web.console import bp
from web.console.paging import paginate
from web.console.form_input import load
from web.console.session import signed_in
from web.db import get_db
from web.messages.schemas import MessageQuerySchema

FILTERS = ("status", "sequence_id", "broadcast_id", "email", "from", "to", "subscriber_id")


def _day(name: str, errors: dict[str, list[str]]) -> date | None:
    raw = request.args.get(name, "")
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = ["Not a valid date (YYYY-MM-DD)."]
        return None


def _filters() -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The query string as message_log's arguments: ``from``/``to`` are whole days in
    the account's zone, given to the API's schema as ``since``/``until``."""
    errors: dict[str, list[str]] = {}
    first, last = _day("from", errors), _day("to", errors)
    if first and last and first > last:
        errors["from"] = ["Must not be after the “to” date."]
    local = zone(getattr(g.account, "timezone", None))
    values: dict[str, Any] = dict(request.args)
    if first:
        values["since"] = datetime.combine(first, time(), local).isoformat()
    if last:
        values["until"] = datetime.combine(last + timedelta(days=1), time(), local).isoformat()
    query, schema_errors = load(MessageQuerySchema(), values)
    # The schema's names for the page's date boxes.
    for name, box in (("since", "from"), ("until", "to")):
        if name in schema_errors:
            schema_errors[box] = schema_errors.pop(name)
    return query, {**schema_errors, **errors}


@bp.get("/messages")
@signed_in
def messages() -> Any:
    query, errors = _filters()
    page = None if errors else paginate(message_log(g.account_id, **query))
    session = get_db()
    sequences = session.execute(select(Sequence.id, Sequence.name).where(Sequence.account_id == g.account_id)
                                .order_by(Sequence.name)).all()
    broadcasts = session.execute(select(Broadcast.id, Broadcast.name).where(Broadcast.account_id == g.account_id)
                                 .order_by(Broadcast.id.desc())).all()
    return render_template("console/messages/list.html", title="Messages", page=page, errors=errors,
                           args=request.args, status_options=[(s, s) for s in MESSAGE_STATUSES], sequences=sequences, broadcasts=broadcasts,
                           filtered=any(request.args.get(k) for k in FILTERS))


@bp.get("/messages/<int:message_id>")
@signed_in
def message(message_id: int) -> Any:
    session = get_db()
    row = session.scalar(select(Message).where(Message.id == message_id, Message.account_id == g.account_id))
    if row is None:
        abort(404)
    events = list(session.scalars(message_events(g.account_id, row.id)))
    sequence = session.get(Sequence, row.sequence_id) if row.sequence_id else None
    broadcast = session.scalar(select(Broadcast).where(Broadcast.id == row.broadcast_id,
                                                       Broadcast.account_id == g.account_id)) if row.broadcast_id else None
    return render_template("console/messages/detail.html", title=f"Message {row.id}", message=row, events=events,
                           sequence=sequence, broadcast=broadcast)
