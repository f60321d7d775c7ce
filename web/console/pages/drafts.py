"""AI drafts: the account's drafts, a brief form that asks for one (queued on the
ai pool, as the API's 202), a page that polls until the draft is written
(static/drafts.js), the review of what was drafted with its pre-flight report
(email HTML only inside a sandboxed iframe's srcdoc, never in the page), and
apply. The asking and applying are web.ai.actions, the API's own; the API has no
way to discard a draft, so neither has the console."""
from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from sqlalchemy import select

from ai.draft_rows import BRIEF_KEYS, MAX_EMAILS, MIN_EMAILS, get_draft
from content.render import render_email, subscriber_context
from models import AiDraft, Sequence
from models.ai_draft import DRAFT_KINDS, DRAFT_STATUSES
from sequencing.errors import InvalidInputError, NotFoundError, PreflightFailedError, StateConflictError
from sequencing.preflight import SAMPLE_READER
from web.ai.actions import apply_ready_draft, ask_for_draft
from web.ai.schemas import DraftCreateSchema, DraftQuerySchema
from web.auth import current_account_id
from web.console import bp, form_input
from web.console.paging import paginate
from web.console.session import signed_in
from web.db import get_db
from web.resource import newest_owned

BRIEF_FIELDS = ("goal", "audience", "product", "tone", "emails", "language", "sender_name", "url", "length",
                "segment")
FORM_FIELDS = ("kind", "brief", *(f"brief.{name}" for name in BRIEF_FIELDS), "sequence_id", "step", "count")
PENDING = ("queued", "running")
SEQUENCE_CHOICES = 500  # the newest sequences offered for a step draft; the API takes any of the account's


def _draft(draft_id: int) -> Any:
    try:
        return get_draft(get_db(), current_account_id(), draft_id)
    except NotFoundError:
        abort(404)


@bp.get("/drafts")
@signed_in
def drafts() -> Any:
    raw = {k: v for k in ("kind", "status") if (v := request.args.get(k))}
    try:
        filters = DraftQuerySchema().load(raw)
    except ValidationError as exc:
        flash("Filter ignored: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form_input.flat(exc.messages).items()),
              "error")
        filters = {}
    page = paginate(newest_owned(AiDraft, filters))
    return render_template("console/drafts/list.html", title="AI drafts", page=page, filters=filters,
                           kinds=DRAFT_KINDS, statuses=DRAFT_STATUSES)


def _sequences() -> list[Any]:
    return list(get_db().execute(select(Sequence.id, Sequence.name, Sequence.status)
                                 .where(Sequence.account_id == current_account_id())
                                 .order_by(Sequence.id.desc()).limit(SEQUENCE_CHOICES)))


def _brief_form(form: dict[str, Any], errors: dict[str, list[str]], status: int = 200) -> Any:
    return render_template("console/drafts/new.html", title="Ask for an AI draft", form=form, errors=errors,
                           kinds=DRAFT_KINDS, brief_keys=BRIEF_KEYS, sequences=_sequences(),
                           model_configured=current_app.config["ESEQ_SETTINGS"].ai_configured,
                           min_emails=MIN_EMAILS, max_emails=MAX_EMAILS), status


def _asked_again(draft: Any) -> dict[str, Any]:
    """An earlier draft's request as the form's boxes, to ask again or ask for something near it."""
    brief = (draft.request or {}).get("brief") or {}
    return {"kind": draft.kind, "sequence_id": draft.sequence_id or "", "step": "" if draft.step is None else draft.step,
            "count": (draft.request or {}).get("count") or "",
            **{f"brief.{name}": brief.get(name, "") for name in BRIEF_FIELDS}}


@bp.get("/drafts/new")
@signed_in
def drafts_new() -> Any:
    """The brief form, empty, for a step (``?kind=&sequence_id=&step=``), or filled in
    from an earlier draft of the account (``?again=<id>``)."""
    again = request.args.get("again", "")
    if again.isdigit():
        return _brief_form(_asked_again(_draft(int(again))), {})
    return _brief_form({"kind": request.args.get("kind", "sequence"), "sequence_id": request.args.get("sequence_id", ""),
                        "step": request.args.get("step", "")}, {})


def _draft_request(form: dict[str, str]) -> dict[str, Any]:
    """The form as the body of POST /api/v1/ai/drafts: the brief holds the boxes
    filled in (the API names any its kind does not take), numbers as numbers."""
    brief = {name: form[f"brief.{name}"].strip() for name in BRIEF_FIELDS if form[f"brief.{name}"].strip()}
    if "emails" in brief:
        brief["emails"] = form_input.number(brief["emails"])
    return {"kind": form["kind"], "brief": brief or None, "sequence_id": form_input.number(form["sequence_id"]),
            "step": form_input.number(form["step"]), "count": form_input.number(form["count"])}


@bp.post("/drafts")
@signed_in
def drafts_create() -> Any:
    form = {name: request.form.get(name, "") for name in FORM_FIELDS if name != "brief"}
    try:
        draft = ask_for_draft(DraftCreateSchema().load(_draft_request(form)))
    except ValidationError as exc:
        return _brief_form(form, form_input.by_field(form_input.flat(exc.messages), FORM_FIELDS), 422)
    except InvalidInputError as exc:
        get_db().rollback()
        return _brief_form(form, form_input.by_field(exc.errors, FORM_FIELDS), 422)
    except NotFoundError:
        get_db().rollback()
        return _brief_form(form, {"sequence_id": ["No such sequence in this account."]}, 404)
    flash(f"Draft {draft.id} is queued on the ai pool; this page shows it as soon as it is written.", "ok")
    return redirect(url_for("console.drafts_show", draft_id=draft.id), 303)


def _checks_by_step(preflight: dict[str, Any] | None) -> dict[int, list[dict[str, Any]]]:
    """The pre-flight's verdict on each email, by its step's position, to show beside the step."""
    by_step: dict[int, list[dict[str, Any]]] = {}
    for email in (preflight or {}).get("emails") or []:
        by_step.setdefault(int(email.get("position", 0)), []).append(email)
    return by_step


def _as_read(email: dict[str, Any]) -> dict[str, Any]:
    """A drafted email as the pre-flight's sample reader gets it ("Hi Alex", not the
    template's source), or why it does not render."""
    try:
        rendered = render_email(email.get("subject") or "", email.get("html"), email.get("text"),
                                subscriber_context(SAMPLE_READER))
    except Exception as exc:  # noqa: BLE001 - drafted content can fail to render in any way; say so, show the source
        return {"error": f"does not render for a sample reader: {exc}"[:300]}
    return {"subject": rendered.subject, "html": rendered.html, "text": rendered.text}


def _emails(draft: Any) -> dict[int, dict[str, Any]]:
    """Each drafted email by its step's position, rendered for reading."""
    result = draft.result or {}
    if draft.status != "ready":
        return {}
    if draft.kind == "sequence":
        steps = enumerate((result.get("sequence") or {}).get("steps") or [])
        return {i: _as_read(step) for i, step in steps if isinstance(step, dict) and step.get("type") == "email"}
    if isinstance(result.get("email"), dict):
        return {int(result.get("step") or 0): _as_read(result["email"])}
    return {}


def _sequence_url(sequence_id: int | None) -> str | None:
    """The sequence's console page, in a build that has the sequences page."""
    if sequence_id is None or "console.sequences_page" not in current_app.view_functions:
        return None
    return url_for("console.sequences_page", sequence_id=sequence_id)


@bp.get("/drafts/<int:draft_id>")
@signed_in
def drafts_show(draft_id: int) -> Any:
    draft = _draft(draft_id)
    return render_template("console/drafts/show.html", title=f"AI draft {draft.id}", draft=draft,
                           pending=draft.status in PENDING, checks=_checks_by_step(draft.preflight),
                           read=_emails(draft), reader=SAMPLE_READER,
                           applied_url=_sequence_url((draft.applied or {}).get("sequence_id")),
                           sequence_url=_sequence_url(draft.sequence_id))


@bp.get("/drafts/<int:draft_id>/status")
@signed_in
def drafts_status(draft_id: int) -> Any:
    """What the review page polls while the draft is written."""
    draft = _draft(draft_id)
    return {"id": draft.id, "status": draft.status, "pending": draft.status in PENDING}


@bp.post("/drafts/<int:draft_id>/apply")
@signed_in
def drafts_apply(draft_id: int) -> Any:
    _draft(draft_id)
    try:
        applied = apply_ready_draft(draft_id)
    except (StateConflictError, PreflightFailedError, InvalidInputError) as exc:
        get_db().rollback()
        detail = ""
        if isinstance(exc, PreflightFailedError):
            detail = " " + "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.report.failing().items())
        elif isinstance(exc, InvalidInputError):
            detail = " " + "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.errors.items())
        flash(f"Not applied: {exc}{detail}", "error")
        return redirect(url_for("console.drafts_show", draft_id=draft_id), 303)
    if applied["step"] is None:
        flash(f"Applied: sequence {applied['sequence_id']} is created in status {applied['status']}; "
              "activating it runs the pre-flight again.", "ok")
    else:
        flash(f"Applied to step {applied['step']} of sequence {applied['sequence_id']} (now version "
              f"{applied['version']}).", "ok")
    return redirect(url_for("console.drafts_show", draft_id=draft_id), 303)
