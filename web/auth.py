"""Who is calling: an account (JWT or API key) or the administrator (admin token).

Every account endpoint is wrapped in ``account_required`` and reads the caller's
account through ``current_account_id()``; queries filter on it, so another
account's resource is simply not found (404), never forbidden (which would confirm
that it exists).
"""
from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request
from flask_jwt_extended import decode_token
from flask_smorest import abort

from accounts.keys import account_for_key
from web.db import get_db

F = TypeVar("F", bound=Callable[..., Any])

BEARER = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
API_KEY = {"type": "apiKey", "in": "header", "name": "X-API-Key"}
SECURITY = [{"bearerAuth": []}, {"apiKey": []}]


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _account_from_request() -> int | None:
    key = request.headers.get("X-API-Key")
    if key:
        return account_for_key(get_db(), key.strip())
    token = _bearer()
    if token is None:
        return None
    try:
        claims = decode_token(token)
    except Exception:  # any invalid, expired or forged token is simply not a login
        return None
    if claims.get("type") != "access":
        return None
    try:
        return int(claims["sub"])
    except (KeyError, TypeError, ValueError):
        return None


def account_required(fn: F) -> F:
    """Reject the request with 401 unless it carries a valid JWT or API key."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        account_id = _account_from_request()
        if account_id is None:
            abort(401, message="Authentication required: send 'Authorization: Bearer <token>' or 'X-API-Key: <key>'.")
        g.account_id = account_id
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def admin_required(fn: F) -> F:
    """Reject unless the bearer token equals ESEQ_ADMIN_TOKEN (compared in constant time)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        expected = current_app.config["ESEQ_SETTINGS"].admin_token
        if not expected:
            abort(404, message="Account administration is disabled: ESEQ_ADMIN_TOKEN is not set.")
        token = _bearer() or ""
        if not hmac.compare_digest(token.encode(), expected.encode()):
            abort(401, message="Admin token required in 'Authorization: Bearer <ESEQ_ADMIN_TOKEN>'.")
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def current_account_id() -> int:
    return int(g.account_id)
