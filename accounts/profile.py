"""An account changing its own profile (name, sender, postal address, opt-in mode,
form redirect, time zone, retention periods): one function for ``PATCH /account`` and the console's
settings page, which both validate with ``AccountUpdateSchema`` first."""
from __future__ import annotations

from typing import Any

from models import Account

EDITABLE = ("name", "from_email", "from_name", "postal_address", "opt_in", "form_redirect_url", "timezone",
            "retention_events_days", "retention_bodies_days", "retention_inbound_days")


def update_profile(account: Account, changes: dict[str, Any]) -> Account:
    """Set each given field (already validated); a field not given is left alone."""
    for name, value in changes.items():
        if name not in EDITABLE:
            raise ValueError(f"not an editable account field: {name}")
        setattr(account, name, value)
    return account
