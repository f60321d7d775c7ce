"""Providers: each of the account's email providers in the order they are tried,
with the circuit, rate limit and health the API shows (web.providers.shown: the
config without secrets, only which secret keys are set), and the API's changes:
enable, disable, reset the circuit, the priority, weight and rate limit, and delete."""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from sqlalchemy import select

from delivery import provider_admin as admin
from models import WarmingPlan
from web.auth import current_account_id
from web.console import bp, form_input
from web.console.paging import paginate
from web.console.session import signed_in
from web.db import get_db
from web.providers.schemas import ProviderUpdateSchema
from web.providers.shown import ShownProvider, allow_private

LIMIT_FIELDS = ("priority", "weight", "max_per_second")


def _plans_by_provider(provider_ids: list[int]) -> dict[int, int]:
    """provider id -> its warming plan's id, for the account's providers on the page."""
    rows = get_db().execute(select(WarmingPlan.provider_id, WarmingPlan.id).where(
        WarmingPlan.account_id == current_account_id(), WarmingPlan.provider_id.in_(provider_ids)))
    return {provider_id: plan_id for provider_id, plan_id in rows}


def _provider(provider_id: int) -> Any:
    try:
        return admin.get_provider(get_db(), current_account_id(), provider_id)
    except admin.ProviderNotFoundError:
        abort(404)


@bp.get("/providers")
@signed_in
def providers() -> Any:
    page = paginate(admin.list_providers(current_account_id()))
    shown = [ShownProvider(p) for p in page.items]
    return render_template("console/providers/list.html", title="Providers", page=page, providers=shown,
                           plans=_plans_by_provider([p.id for p in shown]))


def _render(provider: Any, form: dict[str, Any] | None = None, errors: dict[str, list[str]] | None = None,
            status: int = 200) -> Any:
    shown = ShownProvider(provider)
    values = form if form is not None else {k: getattr(shown, k) for k in LIMIT_FIELDS}
    return render_template("console/providers/show.html", title=f"Provider {shown.name}", provider=shown,
                           plan_id=_plans_by_provider([shown.id]).get(shown.id), form=values,
                           errors=errors or {}), status


@bp.get("/providers/<int:provider_id>")
@signed_in
def providers_show(provider_id: int) -> Any:
    return _render(_provider(provider_id))


def _change(provider_id: int, data: dict[str, Any]) -> Any:
    """PATCH /api/v1/providers/{id} with ``data``: the same schema, the same domain call."""
    session = get_db()
    provider = _provider(provider_id)
    try:
        admin.update_provider(session, current_account_id(), provider.id, ProviderUpdateSchema().load(data),
                              allow_private())
    except (ValidationError, admin.ProviderInputError) as exc:
        session.rollback()
        errors = (form_input.flat(exc.messages) if isinstance(exc, ValidationError)
                  else {exc.field: [str(exc)]})
        return None, form_input.by_field(errors, LIMIT_FIELDS)
    session.commit()
    return provider, None


@bp.post("/providers/<int:provider_id>/enable")
@signed_in
def providers_enable(provider_id: int) -> Any:
    provider, _ = _change(provider_id, {"enabled": True})
    flash(f"{provider.name} is enabled: it takes its share of the account's mail again.", "ok")
    return redirect(url_for("console.providers_show", provider_id=provider_id), 303)


@bp.post("/providers/<int:provider_id>/disable")
@signed_in
def providers_disable(provider_id: int) -> Any:
    provider, _ = _change(provider_id, {"enabled": False})
    flash(f"{provider.name} is disabled: no mail goes through it until it is enabled.", "ok")
    return redirect(url_for("console.providers_show", provider_id=provider_id), 303)


@bp.post("/providers/<int:provider_id>/reset-circuit")
@signed_in
def providers_reset_circuit(provider_id: int) -> Any:
    provider, _ = _change(provider_id, {"reset_circuit": True})
    flash(f"{provider.name}'s circuit is closed by hand: the next sends try it again.", "ok")
    return redirect(url_for("console.providers_show", provider_id=provider_id), 303)


@bp.post("/providers/<int:provider_id>/delete")
@signed_in
def providers_delete(provider_id: int) -> Any:
    """DELETE /api/v1/providers/{id} (its warming plan goes with it)."""
    session = get_db()
    provider = _provider(provider_id)
    admin.delete_provider(session, current_account_id(), provider.id)
    session.commit()
    flash(f"{provider.name} is deleted, with its credentials.", "ok")
    return redirect(url_for("console.providers"), 303)


@bp.post("/providers/<int:provider_id>/limits")
@signed_in
def providers_limits(provider_id: int) -> Any:
    form = {name: request.form.get(name, "") for name in LIMIT_FIELDS}
    data = {name: form_input.number(form[name]) for name in LIMIT_FIELDS}
    for name in ("priority", "weight"):
        if data[name] is None:
            data[name] = form[name]  # required here: an empty box is refused by name, not skipped
    provider, errors = _change(provider_id, data)
    if errors:
        return _render(_provider(provider_id), form, errors, 422)
    flash(f"{provider.name}'s order and rate limit are saved.", "ok")
    return redirect(url_for("console.providers_show", provider_id=provider_id), 303)
