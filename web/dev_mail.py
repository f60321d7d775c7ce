"""``/dev/mail``: the development mail catcher's mailbox in a browser (registered
only when ``make run`` delivers to it, see delivery/dev_mailbox.py).

Caught mail is someone's content: its HTML is shown in a sandboxed iframe through
``srcdoc`` (escaped by Jinja's autoescape), so no script of it runs, and nothing in it
reaches this origin's cookies or API. The page answers only on loopback, like the
catcher itself: caught mail holds working unsubscribe links.
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template_string, request

from delivery import dev_mailbox

bp = Blueprint("dev_mail", __name__, url_prefix=dev_mailbox.PAGE_PATH)

# The email's images (and our open pixel) may load; nothing else, and no script.
_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src http: https: data:; "
        "frame-src 'self'; frame-ancestors 'none'")
_LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} - development mail</title>
<style>
body { font: 15px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em; }
.banner { background: #fff3cd; border: 1px solid #e0c36a; padding: .5em 1em; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: .3em .6em; vertical-align: top; }
tr:nth-child(even) { background: #f6f6f6; } th { white-space: nowrap; }
pre { white-space: pre-wrap; background: #f6f6f6; padding: 1em; }
iframe { width: 100%; height: 600px; border: 1px solid #ccc; }
</style></head><body>
<p class="banner">Development delivery: these emails were caught on this machine by <code>make run</code>;
none of them left it. Configure <code>SMTP_HOST</code> or a provider to send for real.</p>
{% if mail is none %}
<h1>Caught mail ({{ mails|length }})</h1>
{% if not mails %}<p>Nothing caught yet. Enroll a subscriber in an active sequence and wait for a tick.</p>{% endif %}
<table><tr><th>received (UTC)</th><th>to</th><th>from</th><th>subject</th></tr>
{% for m in mails %}<tr><td>{{ m.received_at.strftime("%Y-%m-%d %H:%M:%S") }}</td>
<td>{{ m.recipients|join(", ") }}</td><td>{{ m.message["From"] }}</td>
<td><a href="{{ url_for("dev_mail.show", key=m.key) }}">{{ m.subject or "(no subject)" }}</a></td></tr>
{% endfor %}</table>
{% else %}
<p><a href="{{ url_for("dev_mail.index") }}">&larr; all caught mail</a> &middot;
<a href="{{ url_for("dev_mail.source", key=mail.key) }}">source</a></p>
<h1>{{ mail.subject or "(no subject)" }}</h1>
<h2>Headers</h2>
<table>{% for name, value in mail.message.items() %}<tr><th>{{ name }}</th><td>{{ value }}</td></tr>{% endfor %}</table>
<h2>HTML</h2>
{% if html is none %}<p>No HTML part.</p>{% else %}<iframe sandbox srcdoc="{{ html }}" title="HTML part"></iframe>{% endif %}
<h2>Text</h2>
{% if text is none %}<p>No text part.</p>{% else %}<pre>{{ text }}</pre>{% endif %}
{% endif %}
</body></html>"""


@bp.before_request
def _loopback_only() -> None:
    if request.remote_addr not in _LOOPBACK:
        abort(404)


@bp.after_request
def _policy(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = _CSP
    return response


def _folder():  # type: ignore[no-untyped-def]
    return current_app.config["ESEQ_SETTINGS"].dev_mail_dir


@bp.get("")
def index() -> str:
    mails = dev_mailbox.caught(_folder())
    return render_template_string(_PAGE, title="Caught mail", mails=mails, mail=None)


@bp.get("/<key>")
def show(key: str) -> str:
    mail = dev_mailbox.one(_folder(), key)
    if mail is None:
        abort(404)
    return render_template_string(_PAGE, title=mail.subject, mail=mail, html=mail.body("html"),
                                  text=mail.body("plain"))


@bp.get("/<key>/source")
def source(key: str) -> Response:
    content = dev_mailbox.raw(_folder(), key)
    if content is None:
        abort(404)
    return Response(content, mimetype="text/plain")
