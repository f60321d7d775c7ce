"""Accounts (admin), the API-key-for-JWT exchange, and the caller's own account."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_jwt_extended import create_access_token
from flask_smorest import Blueprint, abort

from accounts.dkim import DkimRecord, DkimSettingError, NoDkimKeyError, clear_dkim_key, dkim_record, set_dkim_key
from accounts.keys import account_for_key, create_account
from accounts.profile import update_profile
from accounts.webhook_secret import NoAccountError, WebhookSecret, rotate_webhook_secret, webhook_secret
from models import Account
from models.base import utcnow
from web.accounts.schemas import (
    AccountCreatedSchema,
    AccountCreateSchema,
    AccountSchema,
    AccountUpdateSchema,
    DkimKeySchema,
    DkimRecordSchema,
    TokenRequestSchema,
    TokenSchema,
    WebhookSecretRotateSchema,
    WebhookSecretSchema,
)
from web.auth import SECURITY, account_required, admin_required, current_account_id
from web.db import get_db
from web.resource import On, field_errors, map_errors

blp = Blueprint("accounts", __name__, url_prefix="/api/v1", description="Accounts and authentication")

_dkim_errors = map_errors(
    On(DkimSettingError, 422, errors=field_errors("json")),
    On(NoDkimKeyError, 404),
)


@blp.route("/accounts")
class Accounts(MethodView):
    @admin_required
    @blp.arguments(AccountCreateSchema)
    @blp.response(201, AccountCreatedSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create an account (admin token). The API key is in this response only."""
        session = get_db()
        account, key = create_account(session, **data)
        session.commit()
        return {name: getattr(account, name) for name in AccountSchema().fields if name != "subscribe_url"} | {
            "api_key": key}


@blp.route("/account")
class CurrentAccount(MethodView):
    @account_required
    @blp.response(200, AccountSchema)
    @blp.doc(security=SECURITY)
    def get(self) -> Account:
        """The calling account."""
        return _own_account()

    @account_required
    @blp.arguments(AccountUpdateSchema)
    @blp.response(200, AccountSchema)
    @blp.doc(security=SECURITY)
    def patch(self, data: dict[str, Any]) -> Account:
        """Change the calling account's name, sender or postal address (the footer
        of its marketing email shows the address from the next email on)."""
        account = update_profile(_own_account(), data)
        get_db().commit()
        return account


def _own_account() -> Account:
    account = get_db().get(Account, current_account_id())
    if account is None:
        abort(404, message="Account not found.")
    return account


@blp.route("/account/dkim")
class AccountDkim(MethodView):
    @account_required
    @blp.arguments(DkimKeySchema)
    @blp.response(200, DkimRecordSchema)
    @blp.doc(security=SECURITY)
    def put(self, data: dict[str, Any]) -> DkimRecord:
        """Sign this account's mail with its own DKIM key; answers the TXT record to publish."""
        session = get_db()
        with _dkim_errors:
            record = set_dkim_key(session, current_account_id(), **data)
        session.commit()
        return record

    @account_required
    @blp.response(200, DkimRecordSchema)
    @blp.doc(security=SECURITY)
    def get(self) -> DkimRecord:
        """The account's DKIM selector, domain and public TXT record (never the private key)."""
        with _dkim_errors:
            return dkim_record(get_db(), current_account_id())

    @account_required
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self) -> None:
        """Remove the account's key: its mail is signed with the platform's again."""
        session = get_db()
        clear_dkim_key(session, current_account_id())
        session.commit()


_secret_errors = map_errors(On(NoAccountError, 404))
# The secret is the account's own, but no cache or proxy should keep a copy.
_NO_STORE = {"Cache-Control": "no-store, private"}


@blp.route("/account/webhook-secret")
class AccountWebhookSecret(MethodView):
    @account_required
    @blp.response(200, WebhookSecretSchema)
    @blp.doc(security=SECURITY)
    def get(self) -> tuple[WebhookSecret, dict[str, str]]:
        """The secret that signs this account's webhook-step calls, for receivers to verify them."""
        session = get_db()
        with _secret_errors:
            shown = webhook_secret(session, current_account_id(), _secret_key(), utcnow())
        session.commit()  # a secret derived until now is stored once shown
        return shown, _NO_STORE


@blp.route("/account/webhook-secret/rotate")
class AccountWebhookSecretRotation(MethodView):
    @account_required
    @blp.arguments(WebhookSecretRotateSchema)
    @blp.response(200, WebhookSecretSchema)
    @blp.doc(security=SECURITY)
    def post(self, data: dict[str, Any]) -> tuple[WebhookSecret, dict[str, str]]:
        """A new signing secret; the old one signs too for grace_seconds, so receivers can switch over."""
        session = get_db()
        with _secret_errors:
            rotated = rotate_webhook_secret(session, current_account_id(), _secret_key(), utcnow(),
                                            timedelta(seconds=data["grace_seconds"]))
        session.commit()
        return rotated, _NO_STORE


def _secret_key() -> str:
    return str(current_app.config["ESEQ_SETTINGS"].secret_key)


@blp.route("/auth/token")
class Token(MethodView):
    @blp.arguments(TokenRequestSchema)
    @blp.response(200, TokenSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Exchange an API key for a short-lived JWT."""
        account_id = account_for_key(get_db(), data["api_key"])
        if account_id is None:
            abort(401, message="Invalid API key.", errors={"json": {"api_key": ["Invalid API key."]}})
        expires = current_app.config["ESEQ_SETTINGS"].jwt_expires_seconds
        return {
            "access_token": create_access_token(identity=str(account_id)),
            "token_type": "Bearer",
            "expires_in": expires,
        }
