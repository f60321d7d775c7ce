"""Segments: the list with counts, a filter editor (a JSON box and a small builder,
static/segments.js) with a live count, members in pages and as CSV.

Everything goes through audience.segments, as /api/v1/segments does: the filter's
errors are the grammar's, by path (``filter.all.2.op``), shown next to the filter;
the live count is POST /segments/count's.
"""
from __future__ import annotations

import json
from typing import Any

from flask import abort, flash, g, jsonify, redirect, render_template, request, url_for

from audience import segments as domain
from audience.errors import InvalidFilterError, SegmentNotFoundError
from models import Segment, utcnow
from web.console import bp
from web.console.paging import paginate
from web.console.form_input import load
from web.console.session import signed_in
from web.db import get_db
from web.segments.members_csv import members_csv
from web.segments.schemas import SavedSegmentCreateSchema, SegmentCountRequestSchema

LIST_SIZE = 20  # each row is a COUNT query
EXAMPLES = (
    ("Tagged vip", {"tag": "vip"}),
    ("Pro plan, clicked in 30 days", {"all": [{"attribute": "plan", "op": "eq", "value": "pro"},
                                              {"clicked_within_days": 30}]}),
    ("Bought twice in 90 days, or vip", {"any": [{"event": "purchase", "count_gte": 2, "within_days": 90},
                                                 {"tag": "vip"}]}),
    ("Gmail addresses not opened in 60 days", {"all": [{"field": "email_domain", "op": "eq", "value": "gmail.com"},
                                                       {"not": {"opened_within_days": 60}}]}),
)


def _owned(segment_id: int) -> Segment:
    try:
        return domain.get_segment(get_db(), g.account_id, segment_id)
    except SegmentNotFoundError:
        abort(404)


@bp.get("/segments")
@signed_in
def segments() -> Any:
    page = paginate(domain.list_segments(g.account_id), size=LIST_SIZE)
    now = utcnow()
    counts = {s.id: domain.count_members(get_db(), g.account_id, s.filter, now) for s in page.items}
    return render_template("console/segments/list.html", title="Segments", page=page, counts=counts)


def _form() -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The form's name and filter (parsed from the JSON box), checked by the API's
    schema; a filter that is not JSON is an error on ``filter``."""
    raw = request.form.get("filter", "")
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        return {}, {"filter": [f"Not valid JSON: {exc}."]}
    return load(SavedSegmentCreateSchema(), {"name": request.form.get("name", ""), "filter": parsed})


def _editor(segment: Segment | None, errors: dict[str, list[str]], status: int = 200) -> Any:
    name = request.form.get("name", segment.name if segment else "")
    text = request.form.get("filter", json.dumps(segment.filter if segment else {"all": []}, indent=2))
    filter_errors = {k: v for k, v in errors.items() if k != "name"}
    return render_template("console/segments/edit.html", title=f"Edit {segment.name}" if segment else "New segment",
                           segment=segment, name=name, filter_text=text, errors=errors, filter_errors=filter_errors,
                           examples=[(label, json.dumps(f, indent=2)) for label, f in EXAMPLES]), status


@bp.get("/segments/new")
@signed_in
def segment_new() -> Any:
    return _editor(None, {})


@bp.post("/segments/new")
@signed_in
def segment_create() -> Any:
    data, errors = _form()
    if errors:
        return _editor(None, errors, 422)
    session = get_db()
    try:
        segment = domain.create_segment(session, g.account_id, data["name"], data["filter"], utcnow())
    except InvalidFilterError as exc:
        session.rollback()
        return _editor(None, exc.errors, 422)
    session.commit()
    flash(f"Segment “{segment.name}” saved.", "ok")
    return redirect(url_for("console.segment", segment_id=segment.id))


@bp.get("/segments/<int:segment_id>/edit")
@signed_in
def segment_edit(segment_id: int) -> Any:
    return _editor(_owned(segment_id), {})


@bp.post("/segments/<int:segment_id>/edit")
@signed_in
def segment_update(segment_id: int) -> Any:
    segment = _owned(segment_id)
    data, errors = _form()
    if errors:
        return _editor(segment, errors, 422)
    session = get_db()
    try:
        domain.update_segment(session, g.account_id, segment.id, data, utcnow())
    except InvalidFilterError as exc:
        session.rollback()
        return _editor(_owned(segment_id), exc.errors, 422)
    session.commit()
    flash("Segment saved.", "ok")
    return redirect(url_for("console.segment", segment_id=segment.id))


@bp.post("/segments/<int:segment_id>/delete")
@signed_in
def segment_delete(segment_id: int) -> Any:
    session = get_db()
    try:
        domain.delete_segment(session, g.account_id, segment_id)
    except SegmentNotFoundError:
        abort(404)
    session.commit()
    flash("Segment deleted; its subscribers stay.", "ok")
    return redirect(url_for("console.segments"))


@bp.post("/segments/count")
@signed_in
def segment_count() -> Any:
    """The builder's live count: POST /api/v1/segments/count's answer, or its errors
    by path (422)."""
    body = request.get_json(silent=True)
    data, errors = load(SegmentCountRequestSchema(), body if isinstance(body, dict) else {})
    if errors:
        return jsonify(errors=errors), 422
    try:
        node = domain.validate_filter(data["filter"])
    except InvalidFilterError as exc:
        return jsonify(errors=exc.errors), 422
    return jsonify(count=domain.count_members(get_db(), g.account_id, node, utcnow()))


@bp.get("/segments/<int:segment_id>")
@signed_in
def segment(segment_id: int) -> Any:
    found = _owned(segment_id)
    now = utcnow()
    page = paginate(domain.members(g.account_id, found.filter, now))
    return render_template("console/segments/detail.html", title=found.name, segment=found, page=page,
                           filter_text=json.dumps(found.filter, indent=2))


@bp.get("/segments/<int:segment_id>/members.csv")
@signed_in
def segment_csv(segment_id: int) -> Any:
    return members_csv(_owned(segment_id))
