"""Signing in with an API key, and out."""
from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for

from web.console import bp
from web.console.session import safe_next, sign_in, sign_out
from web.extensions import limiter


@bp.get("/sign-in")
def sign_in_page() -> Any:
    return render_template("console/sign_in.html", next=request.args.get("next", ""), error=None)


@bp.post("/sign-in")
@limiter.limit("10 per minute")  # an API key is 256 bits, but a guessing loop still costs us a query each
def sign_in_post() -> Any:
    key = request.form.get("api_key", "")
    if not sign_in(key):
        return render_template("console/sign_in.html", next=request.form.get("next", ""),
                               error="That API key opens no account (wrong, or revoked)."), 401
    return redirect(safe_next(request.form.get("next")))


@bp.post("/sign-out")
def sign_out_post() -> Any:
    sign_out()
    return redirect(url_for("console.sign_in_page"))
