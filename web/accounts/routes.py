"""Accounts (admin), the API-key-for-JWT exchange, and the caller's own account."""
from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_jwt_extended import create_access_token
from flask_smorest import Blueprint, abort

from accounts.keys import account_for_key, create_account
from models import Account
from web.accounts.schemas import (
    AccountCreatedSchema,
    AccountCreateSchema,
    AccountSchema,
    TokenRequestSchema,
    TokenSchema,
)
from web.auth import SECURITY, account_required, admin_required, current_account_id
from web.db import get_db

blp = Blueprint("accounts", __name__, url_prefix="/api/v1", description="Accounts and authentication")


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
        return {name: getattr(account, name) for name in AccountSchema().fields} | {"api_key": key}


@blp.route("/account")
class CurrentAccount(MethodView):
    @account_required
    @blp.response(200, AccountSchema)
    @blp.doc(security=SECURITY)
    def get(self) -> Account:
        """The calling account."""
        account = get_db().get(Account, current_account_id())
        if account is None:
            abort(404, message="Account not found.")
        return account


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
