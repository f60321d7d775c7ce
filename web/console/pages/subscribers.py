"""Subscribers: search, a profile with its timeline, unsubscribe and erase.

The list is the API's query (audience.subscribers.list_subscribers, its filters
checked by the API's SubscriberQuerySchema); the profile shows what GET
/subscribers/{id} shows; the actions call what the API's unsubscribe and erase
call (delivery.unsubscribe, audience.erasure).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for

from audience import subscribers as audience
from audience import topics
from audience.erasure import erase_subscriber
from audience.errors import SubscriberNotFoundError
from audience.timeline import timeline
from core.address_hash import erasure_key
from delivery.unsubscribe import unsubscribe_subscriber
from ml.scoring import as_public, scores_of
from models import Subscriber, utcnow
from models.subscriber import SUBSCRIBER_STATUSES
from web.console import bp
from web.console.paging import paginate
from web.console.form_input import load
from web.console.session import signed_in
from web.db import get_db
from web.subscribers.schemas import SubscriberQuerySchema

TIMELINE_SIZE = 50


def _owned(subscriber_id: int) -> Subscriber:
    """The account's subscriber, or the console's 404 (another account's id included)."""
    try:
        return audience.get_subscriber(get_db(), g.account_id, subscriber_id)
    except SubscriberNotFoundError:
        abort(404)


@bp.get("/subscribers")
@signed_in
def subscribers() -> Any:
    query, errors = load(SubscriberQuerySchema(), request.args)
    page = None if errors else paginate(audience.list_subscribers(get_db(), g.account_id, **query))
    filtered = any(request.args.get(k) for k in ("email", "status", "tag", "topic"))
    return render_template("console/subscribers/list.html", title="Subscribers", page=page, errors=errors,
                           args=request.args, statuses=SUBSCRIBER_STATUSES, filtered=filtered)


def _before() -> datetime | None:
    """``?before=`` (the timeline's "older" link): an ISO time, else the newest."""
    raw = request.args.get("before", "")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@bp.get("/subscribers/<int:subscriber_id>")
@signed_in
def subscriber(subscriber_id: int) -> Any:
    session = get_db()
    person = _owned(subscriber_id)
    scores = as_public(scores_of(session, g.account_id, [person.id]).get(person.id))
    history = timeline(session, g.account_id, person.id, TIMELINE_SIZE, _before())
    return render_template("console/subscribers/profile.html", title=person.email, person=person, scores=scores,
                           topics=topics.subscriber_topics(session, g.account_id, person.id), history=history,
                           paged=request.args.get("before") is not None)


@bp.post("/subscribers/<int:subscriber_id>/unsubscribe")
@signed_in
def subscriber_unsubscribe(subscriber_id: int) -> Any:
    session = get_db()
    try:
        person = unsubscribe_subscriber(session, g.account_id, subscriber_id, utcnow(), via="console")
    except SubscriberNotFoundError:
        abort(404)
    session.commit()
    flash(f"{person.email} is unsubscribed: the address is suppressed and their running sequences ended.", "ok")
    return redirect(url_for("console.subscriber", subscriber_id=subscriber_id))


@bp.post("/subscribers/<int:subscriber_id>/erase")
@signed_in
def subscriber_erase(subscriber_id: int) -> Any:
    """As POST /api/v1/subscribers/{id}/erase: every trace gone, the address kept
    suppressed by its keyed hash."""
    session = get_db()
    key = erasure_key(current_app.config["ESEQ_SETTINGS"].secret_key)
    try:
        erase_subscriber(session, g.account_id, subscriber_id, key, utcnow(), suppress=True)
    except SubscriberNotFoundError:
        abort(404)
    session.commit()
    flash(f"Subscriber {subscriber_id} is erased, with their history; the address stays suppressed.", "ok")
    return redirect(url_for("console.subscribers"))
