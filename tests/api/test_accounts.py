"""Accounts, API keys and JWTs: the front door of every tenant."""
from __future__ import annotations

from models import Account
from tests.conftest import ADMIN_TOKEN
from tests.support.factories import rsa_pem, short_rsa_pem

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_it_creates_an_account_and_shows_the_key_once(client):
    response = client.post("/api/v1/accounts", json={"name": "Acme", "from_email": "News@Acme.test"}, headers=ADMIN)
    assert response.status_code == 201
    body = response.get_json()
    assert body["name"] == "Acme"
    assert body["from_email"] == "news@acme.test"
    assert body["api_key"].startswith("esk_")

    me = client.get("/api/v1/account", headers={"X-API-Key": body["api_key"]})
    assert me.status_code == 200
    assert "api_key" not in me.get_json()


def test_it_stores_only_a_digest_of_the_key(client, session):
    from models import ApiKey

    key = client.post("/api/v1/accounts", json={"name": "Acme", "from_email": "a@acme.test"}, headers=ADMIN).get_json()["api_key"]
    stored = session.query(ApiKey).one()
    assert key not in (stored.digest, stored.prefix)
    assert len(stored.digest) == 64


def test_it_refuses_account_creation_without_the_admin_token(client):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "esk_whatever"}):
        response = client.post("/api/v1/accounts", json={"name": "Acme", "from_email": "a@acme.test"}, headers=headers)
        assert response.status_code == 401


def test_it_names_the_invalid_fields(client):
    response = client.post("/api/v1/accounts", json={"name": "", "from_email": "not-an-email"}, headers=ADMIN)
    assert response.status_code == 422
    body = response.get_json()
    assert set(body["errors"]["json"]) == {"name", "from_email"}
    assert "from_email" in body["message"] and "name" in body["message"]


def test_a_sender_name_that_would_break_a_mail_header_is_refused(client, session):
    # Accepted, it would fail every email of the account when it is built.
    for name in ("Alice\r\nBcc: eve@example.org", "Alice\x00", "Alice\tCo"):
        response = client.post("/api/v1/accounts", json={"name": "Shop", "from_email": "news@shop.example",
                                                         "from_name": name}, headers=ADMIN)
        assert response.status_code == 422 and set(response.get_json()["errors"]["json"]) == {"from_name"}, name
    assert session.query(Account).count() == 0
    ok = client.post("/api/v1/accounts", json={"name": "Shop", "from_email": "news@shop.example",
                                               "from_name": "Alice & Co", "postal_address": ""}, headers=ADMIN)
    assert ok.status_code == 201


def test_a_sender_address_that_no_email_could_be_written_from_is_refused(client, session):
    # fields.Email takes these; delivery.mime cannot write them, so every email of
    # the account would fail "cannot render".
    for address in ('"a\x01b"@example.com', "a@[127.0.0.1]", '"a,b"@example.com'):
        response = client.post("/api/v1/accounts", json={"name": "Shop", "from_email": address}, headers=ADMIN)
        assert response.status_code == 422, address
        body = response.get_json()
        assert set(body["errors"]["json"]) == {"from_email"} and "from_email" in body["message"], address
    assert session.query(Account).count() == 0
    ok = client.post("/api/v1/accounts", json={"name": "Shop", "from_email": "zoë@exämple.de"}, headers=ADMIN)
    assert ok.status_code == 201, ok.get_json()


def test_it_exchanges_an_api_key_for_a_jwt(client, alice):
    response = client.post("/api/v1/auth/token", json={"api_key": alice.api_key})
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    me = client.get("/api/v1/account", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.get_json()["id"] == alice.account_id


def test_it_refuses_a_wrong_api_key_for_a_token(client, alice):
    response = client.post("/api/v1/auth/token", json={"api_key": alice.api_key + "x"})
    assert response.status_code == 401
    assert "api_key" in response.get_json()["errors"]["json"]


def test_it_refuses_forged_and_missing_credentials(client, alice):
    token = client.post("/api/v1/auth/token", json={"api_key": alice.api_key}).get_json()["access_token"]
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-2]}AA"
    for headers in ({}, {"Authorization": f"Bearer {forged}"}, {"Authorization": "Basic abc"}, {"X-API-Key": "nope"}):
        assert client.get("/api/v1/account", headers=headers).status_code == 401


def test_it_answers_malformed_json_with_400_not_500(client):
    response = client.post("/api/v1/accounts", data="{nope", content_type="application/json", headers=ADMIN)
    assert response.status_code == 400
    assert response.get_json()["message"]


# Per-account DKIM keys: the public record comes back, the private key never does.

def put_dkim(client, tenant, pem: str, domain: str = "alice.example.com") -> None:
    """Set the tenant's key; a refused PUT would leave the removal and isolation
    tests below passing on an account that never had one."""
    response = client.put("/api/v1/account/dkim", json={"selector": "s1", "domain": domain, "private_key": pem},
                          headers=tenant.headers)
    assert response.status_code == 200, response.get_json()


def test_it_sets_an_accounts_dkim_key_and_answers_the_record_to_publish(client, alice):
    pem, record = rsa_pem()
    response = client.put("/api/v1/account/dkim", json={"selector": "s2026", "domain": "Alice.Example.com",
                                                         "private_key": pem}, headers=alice.headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"selector": "s2026", "domain": "alice.example.com", "public_key_dns": record}

    shown = client.get("/api/v1/account/dkim", headers=alice.headers)
    assert shown.status_code == 200 and shown.get_json() == response.get_json()
    body = client.get("/api/v1/account", headers=alice.headers).get_data(as_text=True)
    for text in (shown.get_data(as_text=True), response.get_data(as_text=True), body):
        assert "PRIVATE KEY" not in text and pem.splitlines()[1] not in text


def test_it_refuses_bad_dkim_settings_naming_the_field_and_writes_nothing(client, alice, session):
    from models import Account

    pem, _ = rsa_pem()
    small = short_rsa_pem()
    good = {"selector": "s1", "domain": "alice.example.com", "private_key": pem}
    for field, value in (("domain", "not a domain"), ("domain", "-bad-.com"), ("selector", "s1; x=y"),
                         ("selector", "a" * 64), ("private_key", "not a key"), ("private_key", "/etc/passwd"),
                         ("private_key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"),
                         ("private_key", small)):
        response = client.put("/api/v1/account/dkim", json={**good, field: value}, headers=alice.headers)
        assert response.status_code == 422, (field, value)
        body = response.get_json()
        assert list(body["errors"]["json"]) == [field] and field in body["message"]
    assert "512-bit" in response.get_json()["message"]
    account = session.get(Account, alice.account_id)
    assert (account.dkim_selector, account.dkim_domain, account.dkim_private_key) == (None, None, None)
    assert client.get("/api/v1/account/dkim", headers=alice.headers).status_code == 404


def test_it_removes_an_accounts_dkim_key(client, alice, session):
    from models import Account

    pem, _ = rsa_pem()
    put_dkim(client, alice, pem)
    assert client.delete("/api/v1/account/dkim", headers=alice.headers).status_code == 204
    assert client.get("/api/v1/account/dkim", headers=alice.headers).status_code == 404
    session.expire_all()
    assert session.get(Account, alice.account_id).dkim_private_key is None
    assert client.delete("/api/v1/account/dkim", headers=alice.headers).status_code == 204


def test_each_account_sees_and_changes_only_its_own_dkim_key(client, alice, bob):
    pem, record = rsa_pem()
    put_dkim(client, alice, pem)
    assert client.get("/api/v1/account/dkim", headers=bob.headers).status_code == 404
    assert client.delete("/api/v1/account/dkim", headers=bob.headers).status_code == 204
    assert client.get("/api/v1/account/dkim", headers=alice.headers).get_json()["public_key_dns"] == record


def test_the_dkim_endpoints_need_credentials(client):
    for method in ("get", "put", "delete"):
        assert getattr(client, method)("/api/v1/account/dkim", json={}).status_code == 401


def test_an_account_changes_its_own_sender_and_postal_address(client, alice, bob):
    response = client.patch("/api/v1/account", json={"postal_address": "1 Main St, Springfield",
                                                     "from_name": "Alice & Co"}, headers=alice.headers)
    assert response.status_code == 200
    assert response.get_json()["postal_address"] == "1 Main St, Springfield"
    mine = client.get("/api/v1/account", headers=alice.headers).get_json()
    assert (mine["postal_address"], mine["from_name"]) == ("1 Main St, Springfield", "Alice & Co")
    assert client.get("/api/v1/account", headers=bob.headers).get_json()["postal_address"] is None
    cleared = client.patch("/api/v1/account", json={"postal_address": None}, headers=alice.headers).get_json()
    assert cleared["postal_address"] is None and cleared["from_name"] == "Alice & Co"


def test_a_bad_account_change_names_the_field_and_changes_nothing(client, alice):
    before = client.get("/api/v1/account", headers=alice.headers).get_json()
    for body, field in (({"from_email": "a@[127.0.0.1]", "postal_address": "ok"}, "from_email"),
                        ({"from_name": "Evil\r\nBcc: x@y.test"}, "from_name"),
                        ({"name": ""}, "name")):
        response = client.patch("/api/v1/account", json=body, headers=alice.headers)
        assert response.status_code == 422 and field in response.get_json()["errors"]["json"]
    assert client.get("/api/v1/account", headers=alice.headers).get_json() == before
    assert client.patch("/api/v1/account", json={"postal_address": "x"}).status_code == 401


def test_an_account_sets_its_own_retention_and_bad_periods_are_refused_naming_the_field(client, alice, bob):
    defaults = client.get("/api/v1/account", headers=alice.headers).get_json()
    assert (defaults["retention_events_days"], defaults["retention_bodies_days"],
            defaults["retention_inbound_days"]) == (400, 30, 30)
    changed = client.patch("/api/v1/account", json={"retention_events_days": 90, "retention_bodies_days": 7},
                           headers=alice.headers)
    assert changed.status_code == 200
    mine = client.get("/api/v1/account", headers=alice.headers).get_json()
    assert (mine["retention_events_days"], mine["retention_bodies_days"], mine["retention_inbound_days"]) == (90, 7, 30)
    assert client.get("/api/v1/account", headers=bob.headers).get_json()["retention_events_days"] == 400
    for body, field in (({"retention_events_days": 3}, "retention_events_days"),  # under the floor of 7
                        ({"retention_bodies_days": 0}, "retention_bodies_days"),
                        ({"retention_inbound_days": 3651}, "retention_inbound_days"),
                        ({"retention_events_days": "30"}, "retention_events_days"),
                        ({"retention_bodies_days": None}, "retention_bodies_days"),
                        ({"retention_events_days": 30, "retention_inbound_days": 1.5}, "retention_inbound_days")):
        response = client.patch("/api/v1/account", json=body, headers=alice.headers)
        assert response.status_code == 422 and field in response.get_json()["errors"]["json"], body
    assert client.get("/api/v1/account", headers=alice.headers).get_json() == mine
