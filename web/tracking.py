"""Tracking and unsubscribe endpoints, reached from inside emails.

Every URL carries a token signed by delivery.tracking; a token that does not
verify is a 404 (nothing recorded). The click redirect goes only to the URL inside
the signature, so it is no open redirect. The one-click POST (RFC 8058) answers
without a page, as mailbox providers call it.
"""
from __future__ import annotations

import base64
import hashlib

from flask import Blueprint, Response, abort, current_app, redirect, request

from analytics.events import record_message_event
from content.html_input import followable
from delivery.tracking import TokenError, Tracker
from delivery.unsubscribe import unsubscribe_by_message
from models import Message
from models.base import utcnow
from web.db import get_db

bp = Blueprint("tracking", __name__)

_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_NO_STORE = {"Cache-Control": "no-store, private", "X-Robots-Tag": "noindex"}
# The pixel is loaded by mail clients' pages, never ours: under the site-wide
# same-origin resource policy a browser (webmail, /dev/mail's sandboxed frame) drops it.
_PIXEL_HEADERS = {**_NO_STORE, "Cross-Origin-Resource-Policy": "cross-origin"}


def _tracker() -> Tracker:
    settings = current_app.config["ESEQ_SETTINGS"]
    return Tracker(settings.secret_key, settings.public_base_url)


def _verify(purpose: str, token: str):  # type: ignore[no-untyped-def]
    try:
        return _tracker().verify(purpose, token)
    except TokenError:
        abort(404)


@bp.get("/t/o/<token>.gif")
def open_pixel(token: str) -> Response:
    message_id = _verify("open", token)
    session = get_db()
    record_message_event(session, int(message_id), "opened", utcnow())
    session.commit()
    return Response(_PIXEL, mimetype="image/gif", headers=_PIXEL_HEADERS)


@bp.get("/t/c/<token>")
def click(token: str) -> Response:
    message_id, url = _verify("click", token)
    url = followable(str(url))  # links signed before the rewrite dropped them may hold a line break
    if not url.lower().startswith(("http://", "https://")):
        abort(404)
    session = get_db()

    suffix = ":" + hashlib.sha256(str(url).encode()).hexdigest()[:16]
    record_message_event(session, int(message_id), "clicked", utcnow(), dedup_suffix=suffix, properties={"url": url})
    session.commit()
    response = redirect(url, code=302)
    response.headers.update(_NO_STORE)
    return response


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family:sans-serif;max-width:32em;margin:4em auto">{body}</body></html>"""


@bp.route("/u/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Response:
    try:
        message_id = int(_verify("unsubscribe", token))
    except (TypeError, ValueError):
        abort(404)
    if request.method != "POST":
        # GET (and the HEAD Flask adds to it) only shows a form: link scanners that
        # prefetch or probe URLs must not unsubscribe anyone.
        if get_db().get(Message, message_id) is None:
            abort(404)
        # No action: the form posts back to the URL the page came from, whatever
        # path prefix a reverse proxy put before our /u/ (PUBLIC_BASE_URL's).
        body = ('<h1>Unsubscribe</h1><p>Stop receiving these emails?</p>'
                '<form method="post"><button type="submit">Unsubscribe</button></form>')
        return Response(_PAGE.format(title="Unsubscribe", body=body), mimetype="text/html", headers=_NO_STORE)
    session = get_db()
    if not unsubscribe_by_message(session, message_id, utcnow(),
                                  source="one-click" if request.form.get("List-Unsubscribe") else "page"):
        abort(404)
    session.commit()
    if request.form.get("List-Unsubscribe") == "One-Click":
        return Response("", status=200, headers=_NO_STORE)
    return Response(_PAGE.format(title="Unsubscribed", body="<h1>You are unsubscribed</h1><p>You will not receive these emails again.</p>"),
                    mimetype="text/html", headers=_NO_STORE)
