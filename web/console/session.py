"""Who is signed in to the console, and the CSRF check on every form.

The session cookie (Flask's, signed with SECRET_KEY; HttpOnly, SameSite=Lax, Secure
over https) holds the account id, the id of the API key that signed in and a random
CSRF token. Every request checks that the key is still live, so revoking a key signs
out its sessions. Every POST must carry the token (a hidden ``csrf_token`` field or
an ``X-CSRF-Token`` header): SameSite alone does not stop a form posted from a
sibling subdomain.
"""
from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for

from accounts.keys import key_is_live, live_key
from models import Account
from web.db import get_db

F = TypeVar("F", bound=Callable[..., Any])

_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def sign_in(api_key: str) -> bool:
    """Open a session for the key's account; False for a wrong or revoked key."""
    found = live_key(get_db(), api_key.strip())
    if found is None:
        return False
    session.clear()  # a new session id on sign-in: no fixation
    session.permanent = True
    session["key_id"], session["account_id"] = found
    session["csrf"] = secrets.token_urlsafe(32)
    return True


def sign_out() -> None:
    session.clear()


def csrf_token() -> str:
    """The session's token (one for the login form too, before anyone signs in)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


def signed_in(fn: F) -> F:
    """Send the browser to the sign-in page unless its session opens a live account;
    sets ``g.account_id`` (what web.auth.current_account_id reads) and ``g.account``."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        account_id, key_id = session.get("account_id"), session.get("key_id")
        account = None
        if isinstance(account_id, int) and isinstance(key_id, int) and key_is_live(get_db(), key_id, account_id):
            account = get_db().get(Account, account_id)
        if account is None:
            session.clear()
            return redirect(url_for("console.sign_in_page", next=request.full_path.rstrip("?")))
        g.account_id, g.account = account.id, account
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only, never another site."""
    if target and target.startswith("/console") and not urlsplit(target).netloc and "\\" not in target:
        return target
    return url_for("console.overview")


def _check_csrf() -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf") or ""
    if not expected or not hmac.compare_digest(str(sent), str(expected)):
        abort(400, description="The form's security token is missing or stale: reload the page and try again.")
    if any("\x00" in key or "\x00" in value for key, value in request.form.items(multi=True)):
        abort(400, description="NUL characters are not allowed in a form.")


def init_checks(bp: Blueprint) -> None:
    bp.before_request(_check_csrf)

    @bp.after_request
    def _headers(response: Any) -> Any:
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["Cache-Control"] = "no-store"  # account data: never kept by a shared cache
        return response

    @bp.app_template_global()
    def console_csrf_token() -> str:
        return csrf_token()

    @bp.errorhandler(400)
    def _bad_request(error: Any) -> Any:
        return render_template("console/error.html", title="Bad request", message=error.description), 400

    @bp.errorhandler(404)
    def _not_found(error: Any) -> Any:
        return render_template("console/error.html", title="Not found",
                               message="Nothing here, or it belongs to another account."), 404
