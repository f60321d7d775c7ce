"""A sequence whose email fails the pre-flight check is not activated without an
explicit override; the report is there for a draft on request."""
from __future__ import annotations

SPAMMY = {"name": "Blast", "steps": [
    {"type": "email", "subject": "Welcome", "text": "Hello and welcome."},
    {"type": "email", "subject": "ACT NOW!!! FREE MONEY", "html": "<p>100% free, click here, winner</p>"}]}


def test_a_failing_sequence_is_refused_activation_with_its_reasons(client, alice):
    sid = client.post("/api/v1/email-sequences", json=SPAMMY, headers=alice.headers).get_json()["id"]
    report = client.get(f"/api/v1/email-sequences/{sid}/preflight", headers=alice.headers).get_json()
    assert report["passed"] is False
    assert [e["passed"] for e in report["emails"]] == [True, False]
    response = client.post(f"/api/v1/email-sequences/{sid}/activate", json={}, headers=alice.headers)
    assert response.status_code == 422
    assert list(response.get_json()["errors"]["preflight"]) == ["steps.1"]
    assert client.get(f"/api/v1/email-sequences/{sid}", headers=alice.headers).get_json()["status"] == "draft"


def test_an_explicit_override_activates_it_anyway(client, alice):
    sid = client.post("/api/v1/email-sequences", json=SPAMMY, headers=alice.headers).get_json()["id"]
    response = client.post(f"/api/v1/email-sequences/{sid}/activate", json={"override_preflight": True},
                           headers=alice.headers)
    assert response.status_code == 200 and response.get_json()["status"] == "active"


def test_a_clean_sequence_activates_without_a_body(client, alice):
    sid = client.post("/api/v1/email-sequences", json={"name": "Ok", "steps": SPAMMY["steps"][:1]},
                      headers=alice.headers).get_json()["id"]
    assert client.post(f"/api/v1/email-sequences/{sid}/activate", headers=alice.headers).status_code == 200


def test_the_report_is_scoped_to_the_account(client, alice, bob):
    sid = client.post("/api/v1/email-sequences", json=SPAMMY, headers=alice.headers).get_json()["id"]
    assert client.get(f"/api/v1/email-sequences/{sid}/preflight", headers=bob.headers).status_code == 404
