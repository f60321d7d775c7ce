"""Accounts, API keys and JWTs: the front door of every tenant."""
from __future__ import annotations

from tests.conftest import ADMIN_TOKEN

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
