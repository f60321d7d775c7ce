"""Email providers: configured per account, shown with health and circuit state,
never with their secrets."""
from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import Select

from delivery import provider_admin as admin
from delivery.routing import circuit_as_seen
from inbound import PROVIDERS as INBOUND_PROVIDERS
from inbound.tokens import webhook_url
from models import Provider, utcnow
from web.auth import SECURITY, account_required, current_account_id
from web.db import get_db
from web.pagination import SQLPage
from web.providers.schemas import ProviderCreateSchema, ProviderSchema, ProviderUpdateSchema
from web.resource import On, field_errors, map_errors

blp = Blueprint("providers", __name__, url_prefix="/api/v1/providers", description="Email providers")


class _Shown:
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


class _ShownPage(SQLPage):
    def fetch(self, statement: Select[Any]) -> list[Any]:
        return [_Shown(p) for p in super().fetch(statement)]


def _allow_private() -> bool:
    return bool(current_app.config["ESEQ_SETTINGS"].webhook_allow_private)


_errors = map_errors(
    On(admin.ProviderInputError, 422, errors=field_errors("json")),
    On(admin.ProviderNotFoundError, 404, "Provider not found."),
)


@blp.route("")
class Providers(MethodView):
    @account_required
    @blp.arguments(ProviderCreateSchema)
    @blp.response(201, ProviderSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> _Shown:
        """Add a provider; 409 when the account already has one with that name."""
        session = get_db()
        with _errors:
            provider = admin.create_provider(session, current_account_id(), data, _allow_private())
        session.commit()
        return _Shown(provider)

    @account_required
    @blp.response(200, ProviderSchema(many=True))
    @blp.paginate(_ShownPage)
    @blp.doc(security=SECURITY)
    def get(self) -> Select[Any]:
        """Providers in the order they are tried, with health and circuit state."""
        return admin.list_providers(current_account_id())


@blp.route("/<int:provider_id>")
class ProviderById(MethodView):
    @account_required
    @blp.response(200, ProviderSchema)
    @blp.doc(security=SECURITY)
    def get(self, provider_id: int) -> _Shown:
        with _errors:
            return _Shown(admin.get_provider(get_db(), current_account_id(), provider_id))

    @account_required
    @blp.arguments(ProviderUpdateSchema)
    @blp.response(200, ProviderSchema)
    @blp.doc(security=SECURITY)
    def patch(self, data: dict[str, Any], provider_id: int) -> _Shown:
        """Change fields; config secrets not sent are kept, unless the change moves
        where they are sent (host, port, TLS, base_url, region): then 422 naming a
        stored secret to send again with it."""
        session = get_db()
        with _errors:
            provider = admin.update_provider(session, current_account_id(), provider_id, data, _allow_private())
        session.commit()
        return _Shown(provider)

    @account_required
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, provider_id: int) -> None:
        session = get_db()
        with _errors:
            admin.delete_provider(session, current_account_id(), provider_id)
        session.commit()
