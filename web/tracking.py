"""Tracking and unsubscribe endpoints, reached from inside emails.

Every URL carries a token signed by delivery.tracking; a token that does not
verify is a 404 (nothing recorded). What a verified link acts on is
delivery.links' to say: the message of the account it names. The click redirect
goes only to the URL inside the signature, so it is no open redirect; it still
redirects when the link may record nothing. The one-click POST (RFC 8058)
answers without a page, as mailbox providers call it.

An unsubscribe link whose message is gone (the subscriber was erased, or the
account deleted) answers as if it had worked and changes nothing: there is no
one left to write to, and an error page would only tell the reader their mail
address was once known here.
"""
from __future__ import annotations

import base64
import hashlib

from flask import Blueprint, Response, abort, current_app, redirect, request

from content.html_input import followable
from delivery.links import linked_message, trusted
from delivery.tracking import Link, TokenError, Tracker
from delivery.unsubscribe import unsubscribe_by_link
from models.base import utcnow
from sequencing.intake import ingest_link_event
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


@bp.get("/t/o/<token>.gif")
def open_pixel(token: str) -> Response:
    try:
        link = _tracker().open_link(token)
    except TokenError:
        abort(404)
    session = get_db()
    ingest_link_event(session, link, "opened", utcnow())
    session.commit()
    return Response(_PIXEL, mimetype="image/gif", headers=_PIXEL_HEADERS)


@bp.get("/t/c/<token>")
def click(token: str) -> Response:
    try:
        link, url = _tracker().click_link(token)
    except TokenError:
        abort(404)
    url = followable(url)  # links signed before the rewrite dropped them may hold a line break
    if not url.lower().startswith(("http://", "https://")):
        abort(404)
    session = get_db()

    suffix = ":" + hashlib.sha256(url.encode()).hexdigest()[:16]
    ingest_link_event(session, link, "clicked", utcnow(), dedup_suffix=suffix, properties={"url": url})
    session.commit()
    response = redirect(url, code=302)
    response.headers.update(_NO_STORE)
    return response


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family:sans-serif;max-width:32em;margin:4em auto">{body}</body></html>"""
_DONE = "<h1>You are unsubscribed</h1><p>You will not receive these emails again.</p>"


def _unsubscribe_link(token: str) -> Link:
    """The verified link; a 404 when it is not ours or may not act (delivery.links)."""
    try:
        link = _tracker().unsubscribe_link(token)
    except TokenError:
        abort(404)
    if not trusted(get_db(), link):
        abort(404)
    return link


@bp.route("/u/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Response:
    link = _unsubscribe_link(token)
    session = get_db()
    if request.method != "POST":
        # GET (and the HEAD Flask adds to it) only shows a form: link scanners that
        # prefetch or probe URLs must not unsubscribe anyone.
        if linked_message(session, link) is None:  # erased: nothing to ask
            return Response(_PAGE.format(title="Unsubscribed", body=_DONE), mimetype="text/html", headers=_NO_STORE)
        # No action: the form posts back to the URL the page came from, whatever
        # path prefix a reverse proxy put before our /u/ (PUBLIC_BASE_URL's).
        body = ('<h1>Unsubscribe</h1><p>Stop receiving these emails?</p>'
                '<form method="post"><button type="submit">Unsubscribe</button></form>')
        return Response(_PAGE.format(title="Unsubscribe", body=body), mimetype="text/html", headers=_NO_STORE)
    unsubscribe_by_link(session, link, utcnow(), source="one-click" if request.form.get("List-Unsubscribe") else "page")
    session.commit()
    if request.form.get("List-Unsubscribe") == "One-Click":
        return Response("", status=200, headers=_NO_STORE)
    return Response(_PAGE.format(title="Unsubscribed", body=_DONE), mimetype="text/html", headers=_NO_STORE)
