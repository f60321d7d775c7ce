"""Providers' credentials and accounts' DKIM keys are sealed at rest (models.sealed):
what PostgreSQL holds, what the platform reads back, and rotating the keys."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from accounts.webhook_secret import stored_secrets
from delivery.circuits import load_routes
from delivery.sender import ACCOUNT_COLUMNS, _by_id
from models import db, sealed
from scripts.reseal_secrets import reseal
from tests.conftest import ROOT, TEST_ENV
from tests.support.factories import rsa_pem

SMTP = {"name": "relay", "kind": "smtp", "priority": 1,
        "config": {"host": "93.184.216.34", "port": 587, "username": "u", "password": "smtp-secret-4711",
                   "use_tls": True}}
TEST_KEY = TEST_ENV["ESEQ_SECRETS_KEYS"]


@pytest.fixture
def keys() -> Iterator[None]:
    """Lets a test change the process's keys; the run's own come back after it."""
    try:
        yield
    finally:
        sealed.use_keys((TEST_KEY,))


def raw(sql: str, **params: object) -> str:
    with db.get_engine().connect() as conn:
        return str(conn.execute(text(sql), params).scalar())


def add_provider(client, tenant) -> int:
    response = client.post("/api/v1/providers", json=SMTP, headers=tenant.headers)
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def routes_of(tenant) -> list:
    with db.session_scope() as session:
        return load_routes(session, {tenant.account_id}, None)[tenant.account_id]


def test_a_providers_credentials_are_sealed_in_the_database_and_read_back_for_sending(client, alice):
    pid = add_provider(client, alice)
    stored = raw("SELECT config::text FROM providers WHERE id = :id", id=pid)
    assert "smtp-secret-4711" not in stored and "93.184.216.34" not in stored
    assert '"__sealed__"' in stored
    [route] = routes_of(alice)
    assert route.config["password"] == "smtp-secret-4711" and route.config["port"] == 587
    shown = client.get(f"/api/v1/providers/{pid}", headers=alice.headers).get_json()
    assert "smtp-secret-4711" not in str(shown)


def test_an_accounts_dkim_key_is_sealed_in_the_database(client, alice):
    pem, _ = rsa_pem()
    response = client.put("/api/v1/account/dkim", json={"selector": "s1", "domain": "alice.example.com",
                                                       "private_key": pem}, headers=alice.headers)
    assert response.status_code == 200, response.get_json()
    stored = raw("SELECT dkim_private_key FROM accounts WHERE id = :id", id=alice.account_id)
    assert stored.startswith("sealed:") and "PRIVATE KEY" not in stored
    with db.session_scope() as session:
        account = _by_id(session.connection(), ACCOUNT_COLUMNS, {alice.account_id})[alice.account_id]
    assert account.dkim_private_key == pem


def test_rotating_keys_reseals_every_secret_with_the_new_one(client, alice, keys):
    pid = add_provider(client, alice)
    before = raw("SELECT config::text FROM providers WHERE id = :id", id=pid)
    new = Fernet.generate_key().decode()
    sealed.use_keys((new, TEST_KEY))  # the new key first; the old one still opens
    assert routes_of(alice)[0].config["password"] == "smtp-secret-4711"
    webhook_secret = client.get("/api/v1/account/webhook-secret", headers=alice.headers).get_json()["secret"]
    with db.session_scope() as session:
        assert reseal(session) == 2  # the provider, and Alice's account for its webhook signing secret
    assert raw("SELECT config::text FROM providers WHERE id = :id", id=pid) != before
    sealed.use_keys((new,))  # the old key dropped
    assert routes_of(alice)[0].config["password"] == "smtp-secret-4711"
    with db.session_scope() as session:
        assert stored_secrets(session, [alice.account_id])[alice.account_id].current == webhook_secret
    sealed.use_keys((TEST_KEY,))  # only the old key: it cannot open what the new one sealed
    with pytest.raises(sealed.SecretsUnavailable, match="ESEQ_SECRETS_KEYS"):
        routes_of(alice)


def test_secrets_stored_before_keys_were_set_are_read_and_then_sealed(client, alice, keys):
    sealed.use_keys(())
    pid = add_provider(client, alice)
    assert "smtp-secret-4711" in raw("SELECT config::text FROM providers WHERE id = :id", id=pid)
    sealed.use_keys((TEST_KEY,))
    assert routes_of(alice)[0].config["password"] == "smtp-secret-4711"  # a plain value reads as it is
    with db.session_scope() as session:
        reseal(session)
    assert "smtp-secret-4711" not in raw("SELECT config::text FROM providers WHERE id = :id", id=pid)
    assert routes_of(alice)[0].config["password"] == "smtp-secret-4711"


def test_a_sealed_secret_without_keys_is_an_error_naming_the_setting(client, alice, keys):
    add_provider(client, alice)
    sealed.use_keys(())
    with pytest.raises(sealed.SecretsUnavailable, match="ESEQ_SECRETS_KEYS is not set"):
        routes_of(alice)


def run_reseal(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scripts.reseal_secrets"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_the_reseal_script_seals_with_the_first_key_and_refuses_to_run_without_one(client, alice, keys):
    pid = add_provider(client, alice)
    new = Fernet.generate_key().decode()
    done = run_reseal(ESEQ_SECRETS_KEYS=f"{new},{TEST_KEY}")
    assert done.returncode == 0, done.stderr
    assert "2 rows" in done.stdout  # the provider, and Alice's account (its webhook signing secret)
    sealed.use_keys((new,))
    assert routes_of(alice)[0].config["password"] == "smtp-secret-4711"
    stored = raw("SELECT config::text FROM providers WHERE id = :id", id=pid)
    missing = run_reseal(ESEQ_SECRETS_KEYS="")
    assert missing.returncode == 2 and "ESEQ_SECRETS_KEYS is not set" in missing.stderr
    wrong = run_reseal(ESEQ_SECRETS_KEYS=TEST_KEY)  # cannot open what `new` sealed: changes nothing
    assert wrong.returncode == 1 and "nothing was changed" in wrong.stderr
    assert raw("SELECT config::text FROM providers WHERE id = :id", id=pid) == stored


def test_an_event_subscriptions_secret_is_sealed_and_resealed_with_a_new_key(client, alice, keys):
    from models import EventSubscription

    created = client.post("/api/v1/event-subscriptions", json={"url": "http://93.184.216.34/hook",
                                                               "events": ["message.sent"]}, headers=alice.headers)
    assert created.status_code == 201, created.get_json()
    secret, sid = created.get_json()["secret"], created.get_json()["id"]
    stored = raw("SELECT secret FROM event_subscriptions WHERE id = :id", id=sid)
    assert stored.startswith("sealed:") and secret not in stored
    new = Fernet.generate_key().decode()
    sealed.use_keys((new, TEST_KEY))
    with db.session_scope() as session:
        assert reseal(session) == 2  # Alice's account (its webhook signing secret) and the subscription
    sealed.use_keys((new,))  # the old key dropped
    with db.session_scope() as session:
        assert session.get(EventSubscription, sid).secret == secret
