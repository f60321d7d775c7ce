"""Email providers: configured per account, shown with health and circuit state,
never with their secrets."""
from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import Select

from delivery import provider_admin as admin
from web.auth import SECURITY, account_required, current_account_id
from web.db import get_db
from web.pagination import SQLPage
from web.providers.schemas import ProviderCreateSchema, ProviderSchema, ProviderUpdateSchema
from web.providers.shown import ShownProvider, allow_private
from web.resource import On, field_errors, map_errors

blp = Blueprint("providers", __name__, url_prefix="/api/v1/providers", description="Email providers")


class _ShownPage(SQLPage):
    def fetch(self, statement: Select[Any]) -> list[Any]:
        return [ShownProvider(p) for p in super().fetch(statement)]


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
    def post(self, data: dict[str, Any]) -> ShownProvider:
        """Add a provider; 409 when the account already has one with that name."""
        session = get_db()
        with _errors:
            provider = admin.create_provider(session, current_account_id(), data, allow_private())
        session.commit()
        return ShownProvider(provider)

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
    def get(self, provider_id: int) -> ShownProvider:
        with _errors:
            return ShownProvider(admin.get_provider(get_db(), current_account_id(), provider_id))

    @account_required
    @blp.arguments(ProviderUpdateSchema)
    @blp.response(200, ProviderSchema)
    @blp.doc(security=SECURITY)
    def patch(self, data: dict[str, Any], provider_id: int) -> ShownProvider:
        """Change fields; config secrets not sent are kept, unless the change moves
        where they are sent (host, port, TLS, base_url, region): then 422 naming a
        stored secret to send again with it."""
        session = get_db()
        with _errors:
            provider = admin.update_provider(session, current_account_id(), provider_id, data, allow_private())
        session.commit()
        return ShownProvider(provider)

    @account_required
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, provider_id: int) -> None:
        session = get_db()
        with _errors:
            admin.delete_provider(session, current_account_id(), provider_id)
        session.commit()
