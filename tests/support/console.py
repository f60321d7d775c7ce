"""Signing a test client in to the console, as a browser does: GET the page for the
session's CSRF token, then POST the API key with it."""
from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def csrf_of(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def sign_in(client: Any, api_key: str) -> str:
    """Sign ``client`` in with ``api_key``; returns the session's CSRF token."""
    token = csrf_of(client.get("/console/sign-in").get_data(as_text=True))
    response = client.post("/console/sign-in", data={"api_key": api_key, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return csrf_of(client.get("/console/").get_data(as_text=True))
