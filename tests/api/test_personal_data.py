"""Export and erasure through the API: another account's subscriber is a 404 and
stays untouched; DELETE keeps its contract (204, then gone)."""
from __future__ import annotations

from sqlalchemy import select

from models import Subscriber, Suppression, db


def _subscriber(client, tenant, email="ada@example.test") -> int:
    response = client.post("/api/v1/subscribers", json={"email": email, "tags": ["vip"]}, headers=tenant.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_another_accounts_subscriber_cannot_be_exported_or_erased(client, alice, bob):
    person = _subscriber(client, alice)
    for method, path in [("get", f"/api/v1/subscribers/{person}/export"),
                         ("post", f"/api/v1/subscribers/{person}/erase"), ("delete", f"/api/v1/subscribers/{person}")]:
        assert getattr(client, method)(path, headers=bob.headers).status_code == 404, path
    assert client.get(f"/api/v1/subscribers/{person}/export", headers=alice.headers).get_json()["subscriber"]["tags"] == [
        "vip"]
    with db.session_scope() as s:
        assert s.scalar(select(Subscriber.email)) == "ada@example.test"
        assert s.scalar(select(Suppression.id)) is None
    assert client.get("/api/v1/subscribers/999999/export", headers=alice.headers).status_code == 404


def test_delete_answers_204_and_the_subscriber_is_gone_without_a_new_suppression(client, alice):
    person = _subscriber(client, alice)
    assert client.delete(f"/api/v1/subscribers/{person}", headers=alice.headers).status_code == 204
    assert client.get(f"/api/v1/subscribers/{person}", headers=alice.headers).status_code == 404
    assert client.delete(f"/api/v1/subscribers/{person}", headers=alice.headers).status_code == 404
    assert client.get("/api/v1/suppressions", headers=alice.headers).get_json() == []


def test_an_erased_address_is_listed_without_the_address_and_can_be_removed(client, alice):
    person = _subscriber(client, alice)
    assert client.post(f"/api/v1/subscribers/{person}/erase", headers=alice.headers).status_code == 204
    [entry] = client.get("/api/v1/suppressions", headers=alice.headers).get_json()
    assert (entry["email"], entry["erased"], entry["reason"]) == (None, True, "erased")
    assert "ada" not in str(entry)
    found = client.get("/api/v1/suppressions?email=ADA@example.test", headers=alice.headers).get_json()
    assert found == [entry], "the address finds its erased entry, which does not show it"
    assert client.get("/api/v1/suppressions?email=bob@example.test", headers=alice.headers).get_json() == []
    assert client.delete(f"/api/v1/suppressions/{entry['id']}", headers=alice.headers).status_code == 204
    assert client.get("/api/v1/suppressions", headers=alice.headers).get_json() == []
