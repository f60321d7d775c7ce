"""Tracking and unsubscribe endpoints, reached from inside emails.

Every URL carries a token signed by delivery.tracking; a token that does not
verify is a 404 (nothing recorded). What a verified link acts on is
delivery.links' to say: the message of the account it names. The click redirect
goes only to the URL inside the signature, so it is no open redirect; it still
redirects when the link may record nothing. The one-click POST (RFC 8058)
answers without a page, as mailbox providers call it.

The unsubscribe page is the reader's preference page: the account's topics they
are in, each with its own button to leave it, and "unsubscribe from everything".
Its forms post back under the same token (the token is the authority, and a
form that carries it is no cross-site hole: a forged post would need the token);
a GET changes nothing. A POST without ``leave`` (the one-click POST of RFC 8058,
or the page's last button) unsubscribes from everything, as before topics.

An unsubscribe link whose message is gone (the subscriber was erased, or the
account deleted) answers as if it had worked and changes nothing: there is no
one left to write to, and an error page would only tell the reader their mail
address was once known here.
"""
from __future__ import annotations

import base64
import hashlib
from html import escape

from flask import Blueprint, Response, abort, current_app, redirect, request

from content.html_input import followable
from delivery.links import trusted
from delivery.tracking import Link, TokenError, Tracker
from delivery.unsubscribe import leave_topic_by_link, topics_by_link, unsubscribe_by_link
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
_DONE = "<h1>You are unsubscribed</h1><p>You will not receive email from this sender again.</p>"


def _unsubscribe_link(token: str) -> Link:
    """The verified link; a 404 when it is not ours or may not act (delivery.links)."""
    try:
        link = _tracker().unsubscribe_link(token)
    except TokenError:
        abort(404)
    if not trusted(get_db(), link):
        abort(404)
    return link


def _preferences(topics: list[dict[str, object]], notice: str = "") -> str:
    """The page's body: each topic with its own button, then "everything". Forms
    have no action: they post back to the URL the page came from, whatever path
    prefix a reverse proxy put before our /u/ (PUBLIC_BASE_URL's)."""
    parts = ["<h1>Email preferences</h1>"]
    if notice:
        parts.append(f'<p role="status">{escape(notice)}</p>')
    if topics:
        items = "".join(
            f"<li><strong>{escape(str(t['name']))}</strong>"
            + (f"<br>{escape(str(t['description']))}" if t.get("description") else "")
            + f' <button type="submit" name="leave" value="{int(str(t["id"]))}">Leave {escape(str(t["name"]))}</button></li>'
            for t in topics)
        parts.append('<form method="post"><fieldset><legend>You receive these topics</legend>'
                     f"<ul>{items}</ul></fieldset></form>")
    parts.append('<form method="post"><p>Or stop every email from this sender:</p>'
                 '<button type="submit" name="everything" value="1">Unsubscribe from everything</button></form>')
    return "".join(parts)


def _page(title: str, body: str) -> Response:
    return Response(_PAGE.format(title=title, body=body), mimetype="text/html", headers=_NO_STORE)


@bp.route("/u/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Response:
    link = _unsubscribe_link(token)
    session = get_db()
    if request.method != "POST":
        # GET (and the HEAD Flask adds to it) only shows the page: link scanners that
        # prefetch or probe URLs must not unsubscribe anyone.
        topics = topics_by_link(session, link)
        if topics is None:  # erased: nothing to ask
            return _page("Unsubscribed", _DONE)
        return _page("Email preferences", _preferences(topics))
    leaving = request.form.get("leave")
    if leaving is not None and request.form.get("List-Unsubscribe") is None:
        topic_id = int(leaving) if leaving.isascii() and leaving.isdigit() and len(leaving) < 10 else None
        left = leave_topic_by_link(session, link, topic_id, utcnow()) if topic_id is not None else None
        session.commit()
        topics = topics_by_link(session, link) or []
        notice = f"You left {left}." if left else "You were not in that topic; nothing changed."
        return _page("Email preferences", _preferences(topics, notice))
    unsubscribe_by_link(session, link, utcnow(), source="one-click" if request.form.get("List-Unsubscribe") else "page")
    session.commit()
    if request.form.get("List-Unsubscribe") == "One-Click":
        return Response("", status=200, headers=_NO_STORE)
    return _page("Unsubscribed", _DONE)
