"""The public subscribe form of each account, and the confirmation link.

``GET /subscribe/<form_key>`` serves a plain HTML form (embeddable in a frame, or
copied into a page as it is: its action is absolute); ``POST`` takes it
form-encoded or as JSON (``email``, ``first_name``?, ``topics``?) and answers the
same whatever the address's state (audience.opt_in): JSON for JSON, a small thank-you
page for forms, or a 303 to the account's ``form_redirect_url`` when it set one. ``website`` is a honeypot: people never see it, and a post that
fills it is answered as a success and changes nothing.

Limits: per client IP and per address (on this form), counted by the API's rate
limiter (web.limits: in Redis, shared by every web process; on a Redis outage each
process counts in memory, so the form stays up and still limited per process
rather than refusing every reader: failing closed would let a Redis outage take
sign-ups down, failing wide open would let it take the limits away).

``GET /subscribe/confirm/<token>`` confirms: it acts on a GET because it is the
link a mail client opens. The token is signed and expires (ESEQ_OPT_IN_EXPIRY_HOURS);
it has only the API's general rate limit, as the tracking links have none: it
cannot be guessed, and mail scanners open links from shared addresses.
"""
from __future__ import annotations

from datetime import timedelta
from html import escape
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, redirect, request
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import TooManyRequests

from audience.errors import InvalidSubscriberError
from audience.fields import address_key
from audience.opt_in import ConfirmationError, FormNotFoundError, account_for_form, confirm, form_topics, submit
from models.base import utcnow
from sequencing import triggers
from web.db import get_db
from web.enqueue import enqueue_stored
from web.extensions import limiter

bp = Blueprint("subscribe", __name__)

PER_IP = "20 per 10 minutes"
PER_ADDRESS = "3 per hour"
HONEYPOT = "website"
# The form may be framed by any site (the account's own); it loads nothing and posts only to us.
_FORM_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action {origin}; frame-ancestors *"
_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em">{body}</body></html>"""
_THANKS = {"double": "Thank you! Please check your inbox: we have sent you a link to confirm your subscription.",
           "single": "Thank you for subscribing! If this address needs confirming, we have sent it a link."}


def _settings() -> Any:
    return current_app.config["ESEQ_SETTINGS"]


def _page(title: str, body: str, status: int = 200, csp: str = _CSP) -> Response:
    return Response(_PAGE.format(title=escape(title), body=body), status=status, mimetype="text/html",
                    headers={"Cache-Control": "no-store", "Content-Security-Policy": csp})


def _wants_json() -> bool:
    return request.is_json


def _submitted() -> dict[str, Any]:
    """The post's fields, JSON or form-encoded alike (``topics`` repeated in a form)."""
    if _wants_json():
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else {}
    return {"email": request.form.get("email"), "first_name": request.form.get("first_name"),
            "topics": request.form.getlist("topics"), HONEYPOT: request.form.get(HONEYPOT)}


def _address_limit_key() -> str:
    """The per-address limit's key: this form and the address in its stored form
    (unparseable input is counted as written)."""
    email = _submitted().get("email")
    key = address_key(email) if isinstance(email, str) and "\x00" not in email else "?"
    return f"{request.view_args.get('form_key') if request.view_args else ''}:{key[:320]}"


@bp.get("/subscribe/<form_key>")
def form(form_key: str) -> Response:
    """The embeddable HTML form: email, first name, one checkbox per topic."""
    session = get_db()
    try:
        account = account_for_form(session, form_key)
    except FormNotFoundError:
        return _page("Not found", "<h1>This form does not exist.</h1>", 404)
    base = _settings().public_base_url
    boxes = "".join(
        f'<li><label><input type="checkbox" name="topics" value="{escape(t.key)}"> {escape(t.name)}</label>'
        + (f"<br><small>{escape(t.description)}</small>" if t.description else "") + "</li>"
        for t in form_topics(session, account.id))
    body = (f"<h1>Subscribe to {escape(account.name)}</h1>"
            f'<form method="post" action="{escape(base)}/subscribe/{escape(form_key)}">'
            '<p><label for="eseq-email">Email address</label><br>'
            '<input id="eseq-email" type="email" name="email" required autocomplete="email" maxlength="320"></p>'
            '<p><label for="eseq-first-name">First name (optional)</label><br>'
            '<input id="eseq-first-name" type="text" name="first_name" autocomplete="given-name" maxlength="200"></p>'
            + (f"<fieldset><legend>Topics</legend><ul>{boxes}</ul></fieldset>" if boxes else "")
            + f'<div style="position:absolute;left:-10000px" aria-hidden="true"><label for="eseq-{HONEYPOT}">'
            f'Leave this empty</label><input id="eseq-{HONEYPOT}" type="text" name="{HONEYPOT}" tabindex="-1" '
            'autocomplete="off"></div>'
            '<p><button type="submit">Subscribe</button></p></form>')
    return _page(f"Subscribe to {account.name}", body, csp=_FORM_CSP.format(origin=_origin(base)))


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


@bp.post("/subscribe/<form_key>")
@limiter.limit(PER_IP, key_func=get_remote_address)
@limiter.limit(PER_ADDRESS, key_func=_address_limit_key)
def subscribe(form_key: str) -> Response | tuple[Response, int]:
    session = get_db()
    try:
        account = account_for_form(session, form_key)
    except FormNotFoundError:
        if _wants_json():
            return jsonify({"code": 404, "status": "Not Found", "message": "No such form."}), 404
        return _page("Not found", "<h1>This form does not exist.</h1>", 404)
    data = _submitted()
    thanks = _THANKS["double" if account.opt_in == "double" else "single"]
    if not data.get(HONEYPOT):
        try:
            done = submit(session, account, data, utcnow(), secret_key=_settings().secret_key,
                          base_url=_settings().public_base_url)
        except InvalidSubscriberError as exc:
            session.rollback()
            return _invalid(exc.errors)
        if done.created_active is not None:
            triggers.fire(session, account.id, done.created_active, "subscriber_created", utcnow())
        session.commit()
        if done.confirmation_id is not None:
            from tasks.sending import send_messages  # the Celery app loads only when first needed

            enqueue_stored(send_messages, ([done.confirmation_id],), "opt-in confirmation", "the tick's sweep sends it",
                           message_id=done.confirmation_id)
    if _wants_json():
        return jsonify({"status": "accepted", "message": thanks}), 202
    if account.form_redirect_url:  # the account's own thank-you page (its setting, so no open redirect)
        return redirect(account.form_redirect_url, code=303)
    return _page("Thank you", f"<h1>Thank you</h1><p>{escape(thanks)}</p>")


def _invalid(errors: dict[str, list[str]]) -> Response | tuple[Response, int]:
    if _wants_json():
        return jsonify({"code": 422, "status": "Unprocessable Entity", "errors": {"json": errors},
                        "message": "Invalid value for: " + ", ".join(sorted(errors))}), 422
    items = "".join(f"<li>{escape(field)}: {escape(' '.join(messages))}</li>" for field, messages in errors.items())
    return _page("Please check the form", f"<h1>Please check the form</h1><ul>{items}</ul>"
                 "<p>Go back, correct it and send it again.</p>", 422)


@bp.get("/subscribe/confirm/<token>")
def confirmation(token: str) -> Response:
    session = get_db()
    try:
        subscriber, was_pending = confirm(session, token, utcnow(), secret_key=_settings().secret_key,
                                          max_age=timedelta(hours=_settings().opt_in_expiry_hours))
    except ConfirmationError as exc:
        session.rollback()
        return _page("Link not valid", f"<h1>This link does not work</h1><p>{escape(str(exc))} "
                                       "Subscribe again to get a new one.</p>", 404)
    if was_pending:
        triggers.fire(session, subscriber.account_id, subscriber.id, "subscriber_created", utcnow())
    session.commit()
    return _page("Subscription confirmed", "<h1>You are subscribed</h1><p>Thank you for confirming.</p>")


@bp.errorhandler(TooManyRequests)
def _too_many(exc: TooManyRequests) -> Response | tuple[Response, int]:
    message = "Too many requests; try again later."
    if _wants_json():
        response = jsonify({"code": 429, "status": "Too Many Requests", "message": message})
        return response, 429
    return _page("Too many requests", f"<h1>{message}</h1>", 429)
