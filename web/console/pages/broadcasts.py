"""Broadcasts: the list with status and counts, compose and edit a draft, schedule
through the pre-flight check (its report shown when it refuses, with the API's
override), cancel, and a broadcast's page with the counts per variant and the
winner. Every action calls broadcasts.lifecycle as /api/v1/broadcasts does.

The API has no test send for a broadcast, so neither has the console.
"""
from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from broadcasts import lifecycle
from broadcasts.report import counts
from content.preflight import Spamd
from core.zones import zone
from models import Broadcast, Segment, Topic, utcnow
from sequencing.errors import InvalidInputError, NotFoundError, StateConflictError
from web.console import bp
from web.console.broadcast_form import errors_by_box, from_form, to_form
from web.console.paging import paginate
from web.console.session import signed_in
from web.db import get_db
from web.resource import newest_owned

LIST_SIZE = 20  # each row's counts are two grouped queries
TOTALS = ("queued", "sent", "delivered", "opened", "clicked", "bounced")


def _owned(broadcast_id: int) -> Broadcast:
    try:
        return lifecycle.get(get_db(), g.account_id, broadcast_id)
    except NotFoundError:
        abort(404)


def _zone() -> Any:
    return zone(getattr(g.account, "timezone", None))


def _totals(per_variant: dict[str, dict[str, int]]) -> dict[str, int]:
    return {name: sum(row[name] for row in per_variant.values()) for name in TOTALS}


@bp.get("/broadcasts")
@signed_in
def broadcasts() -> Any:
    page = paginate(newest_owned(Broadcast), size=LIST_SIZE)
    totals = {b.id: _totals(counts(get_db(), b)) for b in page.items}
    return render_template("console/broadcasts/list.html", title="Broadcasts", page=page, totals=totals,
                           columns=TOTALS)


def _compose(row: Broadcast | None, values: dict[str, str], errors: dict[str, list[str]], status: int = 200) -> Any:
    session = get_db()
    segments = session.execute(select(Segment.id, Segment.name).where(Segment.account_id == g.account_id)
                               .order_by(Segment.name)).all()
    topics = session.execute(select(Topic.key, Topic.name).where(Topic.account_id == g.account_id)
                             .order_by(Topic.name)).all()
    return render_template("console/broadcasts/compose.html", title=f"Edit {row.name}" if row else "New broadcast",
                           broadcast=row, values=values, errors=errors, segments=segments, topics=topics,
                           zone_name=getattr(g.account, "timezone", None) or "UTC"), status


@bp.get("/broadcasts/new")
@signed_in
def broadcast_new() -> Any:
    return _compose(None, to_form(None, _zone()), {})


@bp.post("/broadcasts/new")
@signed_in
def broadcast_create() -> Any:
    session = get_db()
    try:
        row = lifecycle.create(session, g.account_id, from_form(request.form, _zone()), utcnow())
    except InvalidInputError as exc:
        session.rollback()
        return _compose(None, dict(request.form), errors_by_box(exc.errors), 422)
    session.commit()
    flash(f"Draft “{row.name}” saved. Nothing is sent until you schedule it.", "ok")
    return redirect(url_for("console.broadcast", broadcast_id=row.id))


@bp.get("/broadcasts/<int:broadcast_id>/edit")
@signed_in
def broadcast_edit(broadcast_id: int) -> Any:
    row = _owned(broadcast_id)
    if row.status != "draft":
        flash(f"Only a draft can be changed; this broadcast is {row.status}.", "error")
        return redirect(url_for("console.broadcast", broadcast_id=row.id))
    return _compose(row, to_form(row, _zone()), {})


@bp.post("/broadcasts/<int:broadcast_id>/edit")
@signed_in
def broadcast_update(broadcast_id: int) -> Any:
    row = _owned(broadcast_id)
    session = get_db()
    try:
        lifecycle.update_draft(session, g.account_id, row.id, from_form(request.form, _zone(), row), utcnow())
    except InvalidInputError as exc:
        session.rollback()
        return _compose(_owned(broadcast_id), dict(request.form), errors_by_box(exc.errors), 422)
    except StateConflictError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("console.broadcast", broadcast_id=broadcast_id))
    session.commit()
    flash("Draft saved.", "ok")
    return redirect(url_for("console.broadcast", broadcast_id=broadcast_id))


def _page(row: Broadcast, report: Any = None, status: int = 200) -> Any:
    session = get_db()
    segment = session.scalar(select(Segment).where(Segment.id == row.segment_id, Segment.account_id == g.account_id)) \
        if row.segment_id else None
    return render_template("console/broadcasts/detail.html", title=row.name, broadcast=row,
                           counts=counts(session, row), segment=segment, report=report,
                           cancellable=row.status in lifecycle.CANCELLABLE), status


@bp.get("/broadcasts/<int:broadcast_id>")
@signed_in
def broadcast(broadcast_id: int) -> Any:
    return _page(_owned(broadcast_id))


@bp.post("/broadcasts/<int:broadcast_id>/schedule")
@signed_in
def broadcast_schedule(broadcast_id: int) -> Any:
    """As POST /api/v1/broadcasts/{id}/schedule: a failing pre-flight check refuses
    (the report is shown, with the override) unless ``override_preflight``."""
    row = _owned(broadcast_id)
    session, settings = get_db(), current_app.config["ESEQ_SETTINGS"]
    override = request.form.get("override_preflight") == "on"
    try:
        lifecycle.schedule(session, g.account_id, row.id, utcnow(), settings.dkim_domain,
                           Spamd(settings.spamd_host, settings.spamd_port), override)
    except lifecycle.BroadcastPreflightError as exc:
        session.rollback()
        return _page(_owned(broadcast_id), exc.report, 409)
    except StateConflictError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("console.broadcast", broadcast_id=broadcast_id))
    session.commit()
    flash("Scheduled" + (" with the pre-flight check overridden." if override else "."), "ok")
    return redirect(url_for("console.broadcast", broadcast_id=broadcast_id))


@bp.post("/broadcasts/<int:broadcast_id>/cancel")
@signed_in
def broadcast_cancel(broadcast_id: int) -> Any:
    row = _owned(broadcast_id)
    session = get_db()
    try:
        lifecycle.cancel(session, g.account_id, row.id, utcnow())
    except StateConflictError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("console.broadcast", broadcast_id=broadcast_id))
    session.commit()
    flash("Cancelled: its messages not yet handed to a send worker will not be sent.", "ok")
    return redirect(url_for("console.broadcast", broadcast_id=broadcast_id))
