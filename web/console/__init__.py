"""``/console``: the platform in a browser, for an account's operators.

Server-rendered with Flask and Jinja; a little plain JavaScript (static/console.js)
for the live parts, no build step. Signing in takes an account's API key and keeps
only the key's id in Flask's signed session cookie (web.console.session), so every
page is scoped to that account exactly as the API is: the pages call the same
domain functions as the API's routes, with ``g.account_id`` set the same way.

Each page lives in its own module under ``web.console.pages`` and adds its routes to
``bp``; ``NAV`` lists the pages in the menu (entries whose endpoint is not
registered are left out, so a page lands with its own module).
"""
from __future__ import annotations

import functools
import importlib
from datetime import timedelta

from flask import Blueprint, Flask, current_app

from settings import Settings

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static", static_url_path="/static")

# (endpoint, label) in menu order.
NAV: tuple[tuple[str, str], ...] = (
    ("console.overview", "Overview"),
    ("console.sequences", "Sequences"),
    ("console.subscribers", "Subscribers"),
    ("console.messages", "Messages"),
    ("console.segments", "Segments"),
    ("console.broadcasts", "Broadcasts"),
    ("console.drafts", "AI drafts"),
    ("console.providers", "Providers"),
    ("console.warming", "Warming"),
    ("console.settings", "Settings"),
)

PAGES = ("web.console.pages.signin", "web.console.pages.overview", "web.console.pages.sequences",
         "web.console.pages.subscribers", "web.console.pages.messages", "web.console.pages.segments",
         "web.console.pages.broadcasts", "web.console.pages.providers", "web.console.pages.warming",
         "web.console.pages.drafts", "web.console.pages.settings")


def _nav() -> list[tuple[str, str]]:
    """The menu's pages that exist in this build."""
    return [(endpoint, label) for endpoint, label in NAV if endpoint in current_app.view_functions]


@functools.cache
def _set_up_blueprint() -> None:
    """The CSRF check, the filters and the pages, once per process: a blueprint is set
    up before its first registration, and create_app may run more than once."""
    from web.console import formatting, session

    session.init_checks(bp)
    formatting.init_filters(bp)
    bp.add_app_template_global(_nav, "console_nav")
    for module_name in PAGES:
        importlib.import_module(module_name)


def init_console(app: Flask, settings: Settings) -> None:
    """Session cookie settings, then the blueprint."""
    app.config.update(
        SESSION_COOKIE_NAME="eseq_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Over plain http (make run, tests on loopback) a Secure cookie would never come back.
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
    )
    _set_up_blueprint()
    app.register_blueprint(bp)
