"""Providers API: validated config, secrets never shown, health visible, tenant-scoped,
and no provider may point at the platform's own network."""
from __future__ import annotations

import json

import pytest

from delivery.providers import SECRET_FIELDS
from models import Provider, db
from tests.support.dns import rebinding

SENDGRID = {"name": "sg", "kind": "sendgrid", "priority": 1, "config": {"api_key": "SG.secret-value"}}
SMTP = {"name": "relay", "kind": "smtp", "priority": 2,
        "config": {"host": "93.184.216.34", "port": 587, "username": "u", "password": "smtp-secret", "use_tls": True}}


def test_it_creates_providers_and_never_shows_their_secrets(client, alice):
    created = client.post("/api/v1/providers", json=SENDGRID, headers=alice.headers)
    assert created.status_code == 201
    body = created.get_json()
    assert body["config"] == {} and body["secrets_set"] == ["api_key"]
    assert body["health"]["circuit_state"] == "closed"
    client.post("/api/v1/providers", json=SMTP, headers=alice.headers)
    listing = client.get("/api/v1/providers", headers=alice.headers)
    assert [p["name"] for p in listing.get_json()] == ["sg", "relay"]
    assert json.loads(listing.headers["X-Pagination"])["total"] == 2
    text = listing.get_data(as_text=True)
    assert "SG.secret-value" not in text and "smtp-secret" not in text
    relay = listing.get_json()[1]
    assert relay["config"] == {"host": "93.184.216.34", "port": 587, "username": "u", "use_tls": True}
    assert relay["secrets_set"] == ["password"]


def test_a_patch_keeps_secrets_it_does_not_send_and_can_reset_the_circuit(client, alice):
    pid = client.post("/api/v1/providers", json=SMTP, headers=alice.headers).get_json()["id"]
    with db.session_scope() as s:
        p = s.get(Provider, pid)
        p.circuit_state, p.consecutive_failures = "open", 7
    response = client.patch(f"/api/v1/providers/{pid}", json={"config": {"timeout": 20}, "reset_circuit": True,
                                                               "domains": ["Gmail.com"]}, headers=alice.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["config"]["timeout"] == 20 and body["domains"] == ["gmail.com"]
    assert body["health"] == {**body["health"], "circuit_state": "closed", "consecutive_failures": 0}
    with db.session_scope() as s:
        assert s.get(Provider, pid).config["password"] == "smtp-secret"


def test_a_send_rate_limit_is_set_shown_and_removed(client, alice):
    created = client.post("/api/v1/providers", json={**SENDGRID, "max_per_second": 14}, headers=alice.headers)
    assert created.get_json()["max_per_second"] == 14
    pid = created.get_json()["id"]
    patched = client.patch(f"/api/v1/providers/{pid}", json={"max_per_second": 0.5}, headers=alice.headers)
    assert patched.get_json()["max_per_second"] == 0.5
    removed = client.patch(f"/api/v1/providers/{pid}", json={"max_per_second": None}, headers=alice.headers)
    assert removed.get_json()["max_per_second"] is None
    with db.session_scope() as s:
        assert s.get(Provider, pid).max_per_second is None


def test_it_names_bad_config_and_writes_nothing(client, alice):
    cases = [({**SENDGRID, "config": {}}, "config"), ({**SENDGRID, "kind": "pigeon"}, "kind"),
             ({**SENDGRID, "config": {"api_key": "x", "colour": "red"}}, "config"),
             ({**SMTP, "config": {"host": "93.184.216.34", "port": 70000}}, "config"),
             ({**SENDGRID, "priority": "high"}, "priority"), ({**SENDGRID, "domains": ["not a domain"]}, "domains"),
             ({**SENDGRID, "max_per_second": 0}, "max_per_second"),
             ({**SENDGRID, "max_per_second": "fast"}, "max_per_second")]
    for payload, field in cases:
        response = client.post("/api/v1/providers", json=payload, headers=alice.headers)
        assert response.status_code == 422, payload
        assert field in response.get_json()["errors"]["json"], payload
    with db.session_scope() as s:
        assert s.query(Provider).count() == 0


def test_a_provider_cannot_point_at_a_private_address(client, alice):
    for config in ({"host": "127.0.0.1"}, {"host": "10.1.2.3", "port": 25}, {"host": "169.254.169.254"}):
        response = client.post("/api/v1/providers", json={**SMTP, "config": config}, headers=alice.headers)
        assert response.status_code == 422
        assert "config.host" in response.get_json()["errors"]["json"]
    response = client.post("/api/v1/providers", json={**SENDGRID, "config": {
        "api_key": "k", "base_url": "http://127.0.0.1:9/"}}, headers=alice.headers)
    assert response.status_code == 422 and "config.base_url" in response.get_json()["errors"]["json"]


def test_names_are_unique_per_account_and_accounts_are_isolated(client, alice, bob):
    pid = client.post("/api/v1/providers", json=SENDGRID, headers=alice.headers).get_json()["id"]
    assert client.post("/api/v1/providers", json=SENDGRID, headers=alice.headers).status_code == 409
    assert client.post("/api/v1/providers", json=SENDGRID, headers=bob.headers).status_code == 201
    assert client.get(f"/api/v1/providers/{pid}", headers=bob.headers).status_code == 404
    assert client.patch(f"/api/v1/providers/{pid}", json={"priority": 3}, headers=bob.headers).status_code == 404
    assert client.delete(f"/api/v1/providers/{pid}", headers=bob.headers).status_code == 404
    assert client.get("/api/v1/providers").status_code == 401
    assert client.delete(f"/api/v1/providers/{pid}", headers=alice.headers).status_code == 204
    assert client.get(f"/api/v1/providers/{pid}", headers=alice.headers).status_code == 404


def test_webhook_verification_secrets_can_be_set_and_are_never_shown(client, alice):
    body = client.post("/api/v1/providers", json={"name": "mg", "kind": "mailgun", "config": {
        "api_key": "key-1", "domain": "mg.acme.test", "webhook_signing_key": "whsec-123"}},
        headers=alice.headers).get_json()
    assert body["secrets_set"] == ["api_key", "webhook_signing_key"]
    assert "whsec-123" not in json.dumps(body)


SES = {"name": "ses", "kind": "ses", "priority": 3,
       "config": {"access_key_id": "AKIAALICE", "secret_access_key": "ses-secret", "region": "eu-west-1"}}


def provider_count() -> int:
    with db.session_scope() as s:
        return s.query(Provider).count()


def test_an_ses_region_that_would_aim_the_endpoint_elsewhere_is_refused_and_nothing_is_stored(client, alice):
    for region in ("@10.0.0.5:8443/#", "eu-west-1.attacker.example", "eu-west-1/"):
        response = client.post("/api/v1/providers", json={**SES, "config": {**SES["config"], "region": region}},
                               headers=alice.headers)
        assert response.status_code == 422, region
        assert "config.region" in response.get_json()["errors"]["json"], region
    assert provider_count() == 0


def test_an_ses_region_cannot_be_patched_into_an_internal_endpoint(client, alice):
    created = client.post("/api/v1/providers", json={**SES, "config": {**SES["config"],
                                                                       "base_url": "https://93.184.216.34"}},
                          headers=alice.headers)
    assert created.status_code == 201, created.get_json()
    pid = created.get_json()["id"]
    response = client.patch(f"/api/v1/providers/{pid}", json={"config": {"region": "@10.0.0.5:8443/#"}},
                            headers=alice.headers)
    assert response.status_code == 422 and "config.region" in response.get_json()["errors"]["json"]
    with db.session_scope() as s:
        assert s.get(Provider, pid).config["region"] == "eu-west-1"


def test_smtp_credentials_without_tls_are_refused_unless_plaintext_auth_is_allowed(client, alice):
    plain = {**SMTP, "config": {**SMTP["config"], "port": 25, "use_tls": False}}
    response = client.post("/api/v1/providers", json=plain, headers=alice.headers)
    assert response.status_code == 422
    assert "config.use_tls" in response.get_json()["errors"]["json"]
    assert "smtp-secret" not in response.get_data(as_text=True)
    assert provider_count() == 0
    opted_in = {**plain, "config": {**plain["config"], "allow_plaintext_auth": True}}
    response = client.post("/api/v1/providers", json=opted_in, headers=alice.headers)
    assert response.status_code == 201
    assert response.get_json()["config"]["allow_plaintext_auth"] is True


def test_turning_tls_off_under_stored_credentials_is_refused(client, alice):
    pid = client.post("/api/v1/providers", json=SMTP, headers=alice.headers).get_json()["id"]
    response = client.patch(f"/api/v1/providers/{pid}", json={"config": {"use_tls": False}}, headers=alice.headers)
    assert response.status_code == 422 and "config.use_tls" in response.get_json()["errors"]["json"]
    with db.session_scope() as s:
        assert s.get(Provider, pid).config["use_tls"] is True


def test_smtp_without_credentials_needs_no_tls(client, alice):
    relay = {**SMTP, "config": {"host": "93.184.216.34", "port": 25}}
    assert client.post("/api/v1/providers", json=relay, headers=alice.headers).status_code == 201


# Each kind with every secret it sends set, and changes of where (or how) they go.
WITH_SECRETS = {
    "smtp": SMTP["config"],
    "sendgrid": {"api_key": "SG.secret-value"},
    "postmark": {"server_token": "pm-secret", "webhook_password": "hook-secret"},
    "mailgun": {"api_key": "mg-secret", "domain": "mg.acme.test"},
    "ses": {**SES["config"], "session_token": "ses-token"},
}
MOVES = [
    ("smtp", {"host": "93.184.216.35"}, "password"),
    ("smtp", {"port": 2525}, "password"),
    ("smtp", {"use_ssl": True, "use_tls": False, "port": 465}, "password"),
    ("sendgrid", {"base_url": "https://93.184.216.35"}, "api_key"),
    ("postmark", {"base_url": "https://93.184.216.35"}, "server_token"),
    ("mailgun", {"base_url": "https://93.184.216.35"}, "api_key"),
    ("ses", {"region": "us-east-1"}, "secret_access_key"),
    ("ses", {"base_url": "https://93.184.216.35"}, "secret_access_key"),
]


def add(client, tenant, kind: str) -> int:
    response = client.post("/api/v1/providers", json={"name": kind, "kind": kind, "config": WITH_SECRETS[kind]},
                           headers=tenant.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def stored_config(pid: int) -> dict:
    with db.session_scope() as s:
        return dict(s.get(Provider, pid).config)


@pytest.mark.parametrize("kind, move, secret", MOVES)
def test_changing_where_a_stored_secret_goes_without_sending_it_again_is_refused_by_its_name(
        client, alice, kind, move, secret):
    pid = add(client, alice, kind)
    before = stored_config(pid)

    response = client.patch(f"/api/v1/providers/{pid}", json={"config": move, "name": "moved"}, headers=alice.headers)

    assert response.status_code == 422
    assert list(response.get_json()["errors"]["json"]) == [f"config.{secret}"]
    assert WITH_SECRETS[kind][secret] not in response.get_data(as_text=True)
    assert stored_config(pid) == before
    assert client.get(f"/api/v1/providers/{pid}", headers=alice.headers).get_json()["name"] == kind


@pytest.mark.parametrize("kind, move, secret", MOVES)
def test_changing_where_a_secret_goes_is_accepted_with_every_secret_sent_again(client, alice, kind, move, secret):
    pid = add(client, alice, kind)
    # Every secret the transport sends, with new values; the webhook ones may stay.
    resent = {key: f"new-{key}" for key in ("password", "api_key", "server_token", "secret_access_key",
                                            "session_token") if key in WITH_SECRETS[kind]}
    response = client.patch(f"/api/v1/providers/{pid}", json={"config": {**move, **resent}}, headers=alice.headers)

    assert response.status_code == 200, response.get_json()
    assert stored_config(pid) == {**WITH_SECRETS[kind], **move, **resent}


def test_an_ses_session_token_kept_behind_is_named_too(client, alice):
    pid = add(client, alice, "ses")
    response = client.patch(f"/api/v1/providers/{pid}", json={"config": {
        "region": "us-east-1", "secret_access_key": "new-secret"}}, headers=alice.headers)
    assert response.status_code == 422
    assert list(response.get_json()["errors"]["json"]) == ["config.session_token"]
    assert stored_config(pid)["region"] == "eu-west-1"


@pytest.mark.parametrize("kind, same", [
    ("smtp", {"host": "93.184.216.34", "port": 587, "use_tls": True, "use_ssl": False}),
    ("sendgrid", {"base_url": "https://api.sendgrid.com"}),  # the default, now said out loud
    ("ses", {"region": "eu-west-1"}),
])
def test_sending_the_same_destination_again_needs_no_secret(client, alice, kind, same, monkeypatch):
    rebinding(monkeypatch, "api.sendgrid.com", "93.184.216.34")  # no DNS here: the save-time check's answer
    pid = add(client, alice, kind)
    response = client.patch(f"/api/v1/providers/{pid}", json={"config": same}, headers=alice.headers)
    assert response.status_code == 200, response.get_json()
    assert stored_config(pid) == {**WITH_SECRETS[kind], **same}


def test_a_provider_with_no_secret_stored_can_be_moved_freely(client, alice):
    pid = client.post("/api/v1/providers", json={**SMTP, "config": {"host": "93.184.216.34", "port": 25}},
                      headers=alice.headers).get_json()["id"]
    response = client.patch(f"/api/v1/providers/{pid}", json={"config": {"host": "93.184.216.35"}},
                            headers=alice.headers)
    assert response.status_code == 200


@pytest.mark.parametrize("kind", WITH_SECRETS)
def test_reading_a_provider_never_shows_a_secret(client, alice, kind):
    pid = add(client, alice, kind)
    secrets = [v for k, v in WITH_SECRETS[kind].items() if k in SECRET_FIELDS[kind]]
    assert secrets
    for response in (client.get(f"/api/v1/providers/{pid}", headers=alice.headers),
                     client.get("/api/v1/providers", headers=alice.headers)):
        assert response.status_code == 200
        assert not [s for s in secrets if s in response.get_data(as_text=True)]
