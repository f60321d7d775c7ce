"""The WSGI entry point for gunicorn (`gunicorn web.wsgi:app`): one app per process,
built from the environment at import so a bad setting stops the web process at boot."""
from __future__ import annotations

from web.app import create_app

app = create_app()
