"""A provider as the API and the console show it: config without its secrets (only
which secret keys are set), health with the circuit as an operator should read it,
and where to point its event webhook. One place, so the console can never show
more of a provider than the API does."""
from __future__ import annotations

from flask import current_app

from delivery import provider_admin as admin
from delivery.routing import circuit_as_seen
from inbound import PROVIDERS as INBOUND_PROVIDERS
from inbound.tokens import webhook_url
from models import Provider, utcnow


class ShownProvider:
    """A provider as the API shows it: config without secrets, health grouped, and
    where to point its event webhook (the account's unguessable URL; SMTP has none)."""

    def __init__(self, p: Provider) -> None:
        self.__dict__.update({k: getattr(p, k) for k in ("id", "name", "kind", "priority", "weight", "domains",
                                                         "enabled", "max_per_second", "created_at")})
        self.config = admin.public_config(p)
        self.secrets_set = admin.secrets_set(p)
        self.health = {k: getattr(p, k) for k in ("consecutive_failures", "circuit_opened_at", "paused_until",
                                                   "last_error", "last_success_at")}
        self.health["circuit_state"] = circuit_as_seen(p.circuit_state, p.circuit_opened_at, utcnow())
        settings = current_app.config["ESEQ_SETTINGS"]
        self.webhook_url = (webhook_url(settings.public_base_url, settings.secret_key, p.kind, p.account_id)
                            if p.kind in INBOUND_PROVIDERS else None)


def allow_private() -> bool:
    """Whether providers may point at private addresses (ESEQ_WEBHOOK_ALLOW_PRIVATE)."""
    return bool(current_app.config["ESEQ_SETTINGS"].webhook_allow_private)
