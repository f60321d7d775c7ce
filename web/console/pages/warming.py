"""Warming: each plan with its ramp plot (warming.plot, the SVG the API serves),
today's cap and use per mailbox-provider group, every adjustment with its reason,
pause and resume, and a form that starts a plan. Everything goes through
warming.admin and the API's schemas, as the API's routes do."""
from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from markupsafe import Markup
from marshmallow import ValidationError
from sqlalchemy import select

from delivery import provider_admin
from models import Provider, utcnow
from warming import admin
from warming.errors import WarmingError
from warming.mailbox import DEFAULT_SHARES, GROUPS
from warming.schedule import CURVES
from web.auth import current_account_id
from web.console import bp, form_input
from web.console.paging import paginate
from web.console.session import signed_in
from web.db import get_db
from web.warming.schemas import PlanCreateSchema, PlanUpdateSchema

NUMBER_FIELDS = ("provider_id", "days", "start_volume", "target_volume")
SHARE_FIELDS = tuple(f"shares.{group}" for group in GROUPS)
FORM_FIELDS = (*NUMBER_FIELDS, "start_date", "curve", "schedule", "timezone", "sending_hours", "allow_overflow",
               "shares", *SHARE_FIELDS)


def _provider_names(ids: list[int]) -> dict[int, str]:
    rows = get_db().execute(select(Provider.id, Provider.name).where(Provider.account_id == current_account_id(),
                                                                     Provider.id.in_(ids)))
    return {provider_id: name for provider_id, name in rows}


def _plan(plan_id: int) -> Any:
    try:
        return admin.get_plan(get_db(), current_account_id(), plan_id)
    except admin.PlanNotFoundError:
        abort(404)


@bp.get("/warming")
@signed_in
def warming() -> Any:
    session = get_db()
    page = paginate(admin.list_plans(current_account_id()))
    plans = admin.describe_all(session, page.items, utcnow())
    return render_template("console/warming/list.html", title="Warming", page=page, plans=plans,
                           names=_provider_names([p["provider_id"] for p in plans]))


@bp.get("/warming/<int:plan_id>")
@signed_in
def warming_plan(plan_id: int) -> Any:
    session = get_db()
    row = _plan(plan_id)
    plan = admin.describe(session, row, utcnow())
    # The plot is our own SVG (warming.plot escapes every text it writes), drawn inline.
    plot = Markup(admin.plot(session, row))
    return render_template("console/warming/show.html", title=f"Warming plan {row.id}", plan=plan, plot=plot,
                           provider_name=_provider_names([row.provider_id]).get(row.provider_id), groups=GROUPS)


def _set_status(plan_id: int, status: str) -> Any:
    session = get_db()
    row = _plan(plan_id)
    admin.update_plan(session, current_account_id(), row.id, PlanUpdateSchema().load({"status": status}), utcnow())
    session.commit()
    return row


@bp.post("/warming/<int:plan_id>/pause")
@signed_in
def warming_pause(plan_id: int) -> Any:
    _set_status(plan_id, "paused")
    flash(f"Plan {plan_id} is paused: its provider sends nothing until you resume it.", "ok")
    return redirect(url_for("console.warming_plan", plan_id=plan_id), 303)


@bp.post("/warming/<int:plan_id>/delete")
@signed_in
def warming_delete(plan_id: int) -> Any:
    """DELETE /api/v1/warming-plans/{id}: the provider sends without a cap from now on."""
    session = get_db()
    admin.delete_plan(session, current_account_id(), _plan(plan_id).id)
    session.commit()
    flash(f"Plan {plan_id} is deleted: its provider sends without a warming cap from now on.", "ok")
    return redirect(url_for("console.warming"), 303)


@bp.post("/warming/<int:plan_id>/resume")
@signed_in
def warming_resume(plan_id: int) -> Any:
    _set_status(plan_id, "warming")
    flash(f"Plan {plan_id} is warming again, each paused group one level lower than where it stopped.", "ok")
    return redirect(url_for("console.warming_plan", plan_id=plan_id), 303)


def _new_form(form: dict[str, Any], errors: dict[str, list[str]], status: int = 200) -> Any:
    providers = list(get_db().scalars(provider_admin.list_providers(current_account_id())))
    return render_template("console/warming/new.html", title="Start a warming plan", form=form, errors=errors,
                           providers=providers, curves=CURVES, groups=GROUPS), status


@bp.get("/warming/new")
@signed_in
def warming_new() -> Any:
    form = {"provider_id": request.args.get("provider_id", ""), "curve": "geometric",
            "timezone": getattr(g.account, "timezone", None) or "UTC",
            **{f"shares.{group}": share for group, share in DEFAULT_SHARES.items()}}
    return _new_form(form, {})


def _plan_request(form: dict[str, str]) -> dict[str, Any]:
    """The form as the body of POST /api/v1/warming-plans: fields left empty are left
    out (the plan's defaults), numbers as numbers for the API's strict schema."""
    data: dict[str, Any] = {name: form_input.number(form[name]) for name in NUMBER_FIELDS}
    data.update({"start_date": form["start_date"].strip() or None, "curve": form["curve"].strip() or None,
                 "timezone": form["timezone"].strip() or None, "schedule": form_input.numbers(form["schedule"]),
                 "sending_hours": form_input.numbers(form["sending_hours"])})
    if form["provider_id"].strip() == "":
        data["provider_id"] = ""  # required: refused by name rather than left out
    shares = {group: form_input.number(form[f"shares.{group}"]) for group in GROUPS}
    if any(v is not None for v in shares.values()):
        data["shares"] = shares
    data["allow_overflow"] = form.get("allow_overflow") == "on"
    return {k: v for k, v in data.items() if v is not None}


@bp.post("/warming")
@signed_in
def warming_create() -> Any:
    form = {name: request.form.get(name, "") for name in FORM_FIELDS if name != "shares"}
    session = get_db()
    try:
        data = PlanCreateSchema().load(_plan_request(form))
        row = admin.create_plan(session, current_account_id(), data, utcnow())
    except ValidationError as exc:
        return _new_form(form, form_input.by_field(form_input.flat(exc.messages), FORM_FIELDS), 422)
    except (WarmingError, admin.PlanConflictError) as exc:
        session.rollback()
        message = exc.message if isinstance(exc, WarmingError) else str(exc)
        return _new_form(form, form_input.by_field({exc.field: [message]}, FORM_FIELDS),
                         409 if isinstance(exc, admin.PlanConflictError) else 422)
    session.commit()
    flash(f"Plan {row.id} is warming: from now on every send through its provider keeps to the day's cap.", "ok")
    return redirect(url_for("console.warming_plan", plan_id=row.id), 303)
