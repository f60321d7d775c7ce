"""Sequences: the list with status and enrollment counts, a sequence's page (steps,
results, funnel and experiments with their charts), activate / pause / resume with
the pre-flight report when activation is refused, and the step editor.

Every read and write is the API's: ``sequencing.lifecycle`` with the pre-flight
check the API runs (``web.preflight.check``), the API's body schema
(``SequenceInSchema``), the analytics functions behind ``/funnel``, ``/analytics``
and ``/experiments``. A domain error becomes what a browser needs: not found a
404 page, a refused transition a flash, invalid input the form again with each
message beside the step its path names.
"""
from __future__ import annotations

import json
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from marshmallow import ValidationError
from markupsafe import Markup
from sqlalchemy import select

from analytics.charts import experiment_bars, funnel_bars
from analytics.funnel import step_funnel
from analytics.sequence_stats import step_counts
from models import Sequence, utcnow
from models.sequence import STEP_TYPES
from sequencing import lifecycle
from sequencing.errors import InvalidInputError, NotFoundError, PreflightFailedError, StateConflictError
from web.console import bp
from web.console.paging import paginate
from web.console.session import signed_in
from web.console.step_form import EditorForm, api_body, edit, form_of, new_step, place_errors, read_form
from web.db import get_db
from web.preflight import check
from web.sequences.analytics import read_experiments
from web.sequences.schemas import SequenceInSchema, dump_steps

STATUSES = ("draft", "active", "paused", "archived")
ACTIONS = ("activate", "pause", "resume")
# Which buttons a sequence in each status offers (lifecycle.TRANSITIONS allows them).
OFFERED = {"draft": ("activate",), "active": ("pause",), "paused": ("resume",), "archived": ()}


def _own(sequence_id: int) -> Sequence:
    """The signed-in account's sequence, or the 404 page (another account's id too)."""
    try:
        return lifecycle.get_sequence(get_db(), g.account_id, sequence_id)
    except NotFoundError:
        abort(404)


@bp.get("/sequences")
@signed_in
def sequences() -> Any:
    status = request.args.get("status", "")
    statement = select(Sequence).where(Sequence.account_id == g.account_id)
    if status in STATUSES:
        statement = statement.where(Sequence.status == status)
    page = paginate(statement.order_by(Sequence.id.desc()))
    counts = lifecycle.count_enrollments_of(get_db(), [s.id for s in page.items])
    return render_template("console/sequences/list.html", title="Sequences", page=page, counts=counts,
                           status=status if status in STATUSES else "", statuses=STATUSES)


def step_summary(step: dict[str, Any]) -> str:
    """A step's fields as compact JSON, for the steps list (the editor shows them whole)."""
    return json.dumps({k: v for k, v in step.items() if k not in ("id", "position", "type")}, separators=(", ", ": "))


def _page(sequence: Sequence, preflight: dict[str, Any] | None = None, status: int = 200) -> Any:
    session = get_db()
    experiments = read_experiments(session, sequence)  # first: it folds the new events the results count
    funnel = step_funnel(session, sequence)
    return render_template(
        "console/sequences/show.html", title=sequence.name, sequence=sequence, steps=dump_steps(sequence),
        enrollments=lifecycle.count_enrollments(session, sequence.id),
        results=step_counts(session, sequence), funnel=funnel,
        funnel_chart=Markup(funnel_bars(funnel, f"Funnel: {sequence.name}")),  # noqa: S704 - every text is escaped by xml_text
        experiments=[(e, Markup(experiment_bars(e))) for e in experiments],  # noqa: S704 - as above
        actions=OFFERED.get(sequence.status, ()), preflight=preflight, step_summary=step_summary), status


@bp.get("/sequences/<int:sequence_id>")
@signed_in
def sequences_page(sequence_id: int) -> Any:
    sequence = _own(sequence_id)
    report = check(get_db(), sequence).as_dict() if request.args.get("preflight") else None
    return _page(sequence, report)


@bp.post("/sequences/<int:sequence_id>/<action>")
@signed_in
def sequences_transition(sequence_id: int, action: str) -> Any:
    if action not in ACTIONS:
        abort(404)
    session = get_db()
    _own(sequence_id)
    override = request.form.get("override_preflight") == "1"
    try:
        sequence = lifecycle.transition(session, g.account_id, sequence_id, action, utcnow(),
                                        preflight=lambda seq: check(session, seq), override_preflight=override)
    except PreflightFailedError as exc:
        session.rollback()
        flash("Not activated: the pre-flight check found problems (below). Fix them, or activate anyway.", "error")
        return _page(_own(sequence_id), exc.report.as_dict(), 422)
    except (StateConflictError, InvalidInputError) as exc:
        session.rollback()
        detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.errors.items()) if isinstance(
            exc, InvalidInputError) else str(exc)
        flash(f"Not done: {detail}", "error")
        return redirect(url_for("console.sequences_page", sequence_id=sequence_id))
    session.commit()
    flash({"activate": "Activated.", "pause": "Paused: its enrollments wait until you resume.",
           "resume": "Resumed."}[action] + f" The sequence is {sequence.status}.", "ok")
    return redirect(url_for("console.sequences_page", sequence_id=sequence_id))


def _editor(editor: EditorForm, sequence: Sequence | None, status: int = 200,
            preflight: dict[str, Any] | None = None) -> Any:
    return render_template("console/sequences/edit.html", title=sequence.name if sequence else "New sequence",
                           editor=editor, sequence=sequence, step_types=STEP_TYPES, preflight=preflight), status


@bp.get("/sequences/new")
@signed_in
def sequences_new() -> Any:
    return _editor(EditorForm(steps=[new_step("email"), new_step("delay"), new_step("email")]), None)


@bp.get("/sequences/<int:sequence_id>/edit")
@signed_in
def sequences_edit(sequence_id: int) -> Any:
    sequence = _own(sequence_id)
    return _editor(form_of(sequence.name, sequence.description, sequence.settings, dump_steps(sequence)), sequence)


def _save(sequence_id: int | None) -> Any:
    """Create (no id) or replace the sequence from the posted editor, as POST / PUT
    /email-sequences would; the form again with every error placed, else a redirect."""
    sequence = _own(sequence_id) if sequence_id is not None else None
    editor = read_form(request.form)
    if edit(editor, request.form.get("op", "save"), request.form.get("add_type", "email")):
        return _editor(editor, sequence)  # a step added, removed or moved: nothing saved yet
    body = api_body(editor)
    if body is None:
        return _editor(editor, sequence, 422)
    session = get_db()
    try:
        data = SequenceInSchema().load({**body, "override_preflight": request.form.get("override_preflight") == "1"})
        if sequence is None:
            sequence = lifecycle.create_sequence(session, g.account_id, data, utcnow())
        else:
            lifecycle.update_sequence(session, g.account_id, sequence.id, data, utcnow(),
                                      preflight=lambda seq: check(session, seq),
                                      override_preflight=data["override_preflight"])
    except ValidationError as exc:
        place_errors(editor, exc.messages if isinstance(exc.messages, dict) else {"form": exc.messages})
        return _editor(editor, sequence, 422)
    except InvalidInputError as exc:
        session.rollback()
        place_errors(editor, exc.errors)
        return _editor(editor, sequence and _own(sequence.id), 422)
    except PreflightFailedError as exc:
        session.rollback()
        place_errors(editor, exc.report.failing())
        return _editor(editor, _own(sequence_id or 0), 422, exc.report.as_dict())
    session.commit()
    flash("Saved." if sequence_id else "Created as a draft: activate it when it is ready.", "ok")
    return redirect(url_for("console.sequences_page", sequence_id=sequence.id))


@bp.post("/sequences/new")
@signed_in
def sequences_create() -> Any:
    return _save(None)


@bp.post("/sequences/<int:sequence_id>/edit")
@signed_in
def sequences_update(sequence_id: int) -> Any:
    return _save(sequence_id)
