"""Settings: the account's name, sender, postal address, time zone, opt-in mode and
retention periods,
validated by the schema ``PATCH /account`` uses and saved by the same function
(``accounts.profile.update_profile``); and the subscribe form's address."""
from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from marshmallow import ValidationError

from accounts.profile import update_profile
from models.account import OPT_IN_MODES
from web.accounts.schemas import AccountSchema, AccountUpdateSchema
from web.console import bp
from web.console.form_input import number
from web.console.session import signed_in
from web.db import get_db

FIELDS = ("name", "from_email", "from_name", "postal_address", "timezone", "opt_in", "form_redirect_url",
          "retention_events_days", "retention_bodies_days", "retention_inbound_days")
# Emptied in the form means cleared, as null clears them in PATCH /account.
CLEARABLE = ("from_name", "postal_address", "form_redirect_url")
# Whole numbers, which the schema takes as numbers only (a form posts text).
NUMBERS = ("retention_events_days", "retention_bodies_days", "retention_inbound_days")


def _typed(name: str, value: str) -> Any:
    if name in NUMBERS:
        return number(value)
    return value if value.strip() or name not in CLEARABLE else None


def _render(values: dict[str, Any], errors: dict[str, Any], status: int = 200) -> Any:
    return render_template("console/settings/index.html", title="Settings", values=values, errors=errors,
                           opt_in_modes=OPT_IN_MODES, subscribe_url=AccountSchema().dump(g.account)["subscribe_url"]
                           ), status


@bp.get("/settings")
@signed_in
def settings() -> Any:
    return _render({name: getattr(g.account, name) for name in FIELDS}, {})


@bp.post("/settings")
@signed_in
def settings_save() -> Any:
    posted = {name: request.form.get(name, "") for name in FIELDS}
    changes = {name: _typed(name, value) for name, value in posted.items()}
    try:
        data = AccountUpdateSchema().load(changes)
    except ValidationError as exc:
        return _render(posted, exc.messages if isinstance(exc.messages, dict) else {}, 422)
    update_profile(g.account, data)
    get_db().commit()
    flash("Settings saved.", "ok")
    return redirect(url_for("console.settings"))
