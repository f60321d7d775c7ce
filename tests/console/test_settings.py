"""Settings: the account's profile saved through PATCH /account's schema and
function, each bad field named beside it with nothing saved, and the subscribe form."""
from __future__ import annotations

from typing import Any

from markupsafe import escape

from models import Account, db
from tests.support.console import sign_in
from tests.support.db_fixtures import Tenant

GOOD = {"name": "Alice Ltd", "from_email": "hello@alice.test", "from_name": "Alice", "postal_address": "1 Main St",
        "timezone": "Europe/Berlin", "opt_in": "double", "form_redirect_url": "", "retention_events_days": "365",
        "retention_bodies_days": "14", "retention_inbound_days": "7"}
NUMBERS = ("retention_events_days", "retention_bodies_days", "retention_inbound_days")


def account(tenant: Tenant) -> Account:
    with db.session_scope() as s:
        row = s.get(Account, tenant.account_id)
        s.expunge(row)
        return row


def test_the_page_shows_the_account_and_its_subscribe_form(client: Any, alice: Tenant, bob: Tenant) -> None:
    sign_in(client, alice.api_key)
    html = client.get("/console/settings").get_data(as_text=True)
    assert 'value="alice@example.com"' in html and "bob@example.com" not in html
    mine = client.get("/api/v1/account", headers={"X-API-Key": alice.api_key}).get_json()["subscribe_url"]
    assert f'id="subscribe-url">{mine}<' in html


def test_saving_changes_the_account_as_patch_does(client: Any, alice: Tenant, bob: Tenant) -> None:
    token = sign_in(client, alice.api_key)
    response = client.post("/console/settings", data={**GOOD, "csrf_token": token})
    assert response.status_code == 302
    saved = client.get("/api/v1/account", headers={"X-API-Key": alice.api_key}).get_json()
    assert {k: saved[k] for k in GOOD if k != "form_redirect_url"} == {
        k: int(v) if k in NUMBERS else v for k, v in GOOD.items() if k != "form_redirect_url"}
    assert saved["form_redirect_url"] is None
    assert account(bob).name == "Bob"
    assert "Settings saved." in client.get("/console/settings").get_data(as_text=True)
    # Emptied optional fields are cleared, as null clears them in PATCH /account.
    client.post("/console/settings", data={**GOOD, "from_name": "", "postal_address": " ", "csrf_token": token})
    assert account(alice).from_name is None and account(alice).postal_address is None


def test_times_show_in_the_saved_zone(client: Any, alice: Tenant) -> None:
    token = sign_in(client, alice.api_key)
    client.post("/console/settings", data={**GOOD, "timezone": "Asia/Tokyo", "csrf_token": token})
    client.post("/api/v1/email-sequences", json={"name": "Zoned", "steps": [
        {"type": "email", "subject": "s", "html": "<p>h</p>"}]}, headers={"X-API-Key": alice.api_key})
    assert " JST</td>" in client.get("/console/sequences").get_data(as_text=True)


def test_bad_fields_are_named_and_nothing_is_saved(client: Any, alice: Tenant) -> None:
    token = sign_in(client, alice.api_key)
    bad = {**GOOD, "timezone": "Mars/Olympus", "from_email": "not an address", "opt_in": "triple",
           "form_redirect_url": "ftp://x.test/", "retention_events_days": "3", "retention_bodies_days": "ten",
           "csrf_token": token}
    response = client.post("/console/settings", data=bad)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    api = client.patch("/api/v1/account", json={"timezone": "Mars/Olympus"}, headers={"X-API-Key": alice.api_key})
    zone_message = api.get_json()["errors"]["json"]["timezone"][0]
    assert f'id="e-timezone">{escape(zone_message)}<' in html
    assert 'id="e-from_email">Not a valid email address.' in html
    assert 'id="e-form_redirect_url">' in html and "Must be one of: single, double." in html
    assert 'id="e-retention_events_days">Must be greater than or equal to 7' in html
    assert 'id="e-retention_bodies_days">Not a valid integer.' in html
    assert 'value="Mars/Olympus"' in html  # what was typed is kept to fix
    row = account(alice)
    assert (row.timezone, row.from_email, row.opt_in, row.name) == ("UTC", "alice@example.com", "single", "Alice")
    assert row.retention_events_days == 400


def test_a_post_without_the_token_is_refused(client: Any, alice: Tenant) -> None:
    sign_in(client, alice.api_key)
    assert client.post("/console/settings", data=GOOD).status_code == 400
    assert account(alice).name == "Alice"
