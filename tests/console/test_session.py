"""Signing in to the console: a session cookie for a live API key, CSRF on every
post, and nothing of an account for anyone else."""
from __future__ import annotations

from typing import Any

from accounts.keys import _digest
from models import ApiKey, db
from tests.support.console import csrf_of, sign_in
from tests.support.db_fixtures import Tenant


def test_pages_need_a_session(client: Any) -> None:
    response = client.get("/console/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/sign-in?next=/console/")


def test_a_wrong_key_is_refused_and_opens_nothing(client: Any, alice: Tenant) -> None:
    token = csrf_of(client.get("/console/sign-in").get_data(as_text=True))
    response = client.post("/console/sign-in", data={"api_key": alice.api_key + "x", "csrf_token": token})
    assert response.status_code == 401
    assert "opens no account" in response.get_data(as_text=True)
    assert client.get("/console/").status_code == 302


def test_signing_in_sets_a_safe_cookie_and_shows_the_account(client: Any, alice: Tenant) -> None:
    token = csrf_of(client.get("/console/sign-in").get_data(as_text=True))
    response = client.post("/console/sign-in", data={"api_key": alice.api_key, "csrf_token": token,
                                                     "next": "/console/"})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert alice.api_key not in cookie
    page = client.get("/console/")
    assert page.status_code == 200 and "Alice" in page.get_data(as_text=True)
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_next_never_leaves_the_console(client: Any, alice: Tenant) -> None:
    token = csrf_of(client.get("/console/sign-in").get_data(as_text=True))
    for target in ("https://evil.test/", "//evil.test/console", "/api/v1/account", "/console\\@evil.test"):
        client.post("/console/sign-out", data={"csrf_token": token})
        token = csrf_of(client.get("/console/sign-in").get_data(as_text=True))
        response = client.post("/console/sign-in", data={"api_key": alice.api_key, "csrf_token": token,
                                                         "next": target})
        assert response.headers["Location"] == "/console/", target
        token = csrf_of(client.get("/console/").get_data(as_text=True))


def test_a_post_without_the_token_is_refused(client: Any, alice: Tenant) -> None:
    token = sign_in(client, alice.api_key)
    assert client.post("/console/sign-out").status_code == 400
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")  # one character off, never the token itself
    assert client.post("/console/sign-out", data={"csrf_token": altered}).status_code == 400
    assert client.get("/console/").status_code == 200  # still signed in
    assert client.post("/console/sign-out", data={"csrf_token": token}).status_code == 302
    assert client.get("/console/").status_code == 302


def test_a_login_form_without_the_token_is_refused(client: Any, alice: Tenant) -> None:
    response = client.post("/console/sign-in", data={"api_key": alice.api_key})
    assert response.status_code == 400
    assert client.get("/console/").status_code == 302


def test_revoking_the_key_signs_its_sessions_out(client: Any, alice: Tenant) -> None:
    sign_in(client, alice.api_key)
    with db.session_scope() as s:
        s.query(ApiKey).filter_by(digest=_digest(alice.api_key)).update({"revoked_at": ApiKey.created_at})
    assert client.get("/console/").status_code == 302


def test_times_follow_the_accounts_zone(client: Any, alice: Tenant) -> None:
    headers = {"X-API-Key": alice.api_key}
    bad = client.patch("/api/v1/account", json={"timezone": "Mars/Olympus"}, headers=headers)
    assert bad.status_code == 422 and "timezone" in bad.get_json()["errors"]["json"]
    assert client.get("/api/v1/account", headers=headers).get_json()["timezone"] == "UTC"
    ok = client.patch("/api/v1/account", json={"timezone": "Asia/Tokyo"}, headers=headers)
    assert ok.status_code == 200 and ok.get_json()["timezone"] == "Asia/Tokyo"


def test_a_second_app_in_one_process_serves_the_console_too(app: Any, settings: Any) -> None:
    from web.app import create_app

    second = create_app(settings)  # the development mailbox's tests, gunicorn's reloads
    assert "console.overview" in second.view_functions and "console.overview" in app.view_functions
    assert second.test_client().get("/console/").status_code == 302
