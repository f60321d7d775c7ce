"""A sequence whose email fails the pre-flight check is not activated without an
explicit override; the report is there for a draft on request."""
from __future__ import annotations

from sequencing.preflight import UNSIGNED

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


def test_an_accounts_own_dkim_domain_is_the_one_its_from_address_must_align_with(client, alice):
    from tests.support.factories import rsa_pem

    pem, _ = rsa_pem()
    sid = client.post("/api/v1/email-sequences", json={"name": "Ok", "steps": SPAMMY["steps"][:1]},
                      headers=alice.headers).get_json()["id"]
    url = f"/api/v1/email-sequences/{sid}/preflight"
    unsigned = client.get(url, headers=alice.headers).get_json()
    assert unsigned["problems"] == [] and unsigned["passed"]
    assert unsigned["notices"] == [UNSIGNED], "nothing signs its mail here: said, not blocking"
    client.put("/api/v1/account/dkim", json={"selector": "s1", "domain": "elsewhere.test", "private_key": pem},
               headers=alice.headers)
    misaligned = client.get(url, headers=alice.headers).get_json()
    assert misaligned["problems"] == ["From domain of alice@example.com does not align with the DKIM domain elsewhere.test"]
    assert misaligned["notices"] == []
    client.put("/api/v1/account/dkim", json={"selector": "s1", "domain": "example.com", "private_key": pem},
               headers=alice.headers)
    assert client.get(url, headers=alice.headers).get_json()["problems"] == []


def test_a_malformed_link_is_a_reason_in_the_report_not_a_500(client, alice):
    broken = {"type": "email", "subject": "Welcome", "html": '<p>Hello and welcome.</p><a href="http://[x">shop</a>'}
    sid = client.post("/api/v1/email-sequences", json={"name": "Ok", "steps": [broken]},
                      headers=alice.headers).get_json()["id"]
    response = client.get(f"/api/v1/email-sequences/{sid}/preflight", headers=alice.headers)
    assert response.status_code == 200
    (email,) = response.get_json()["emails"]
    assert email["reasons"] == ["malformed link http://[x (+1)"] and email["score"] == 1 and email["passed"]
    assert client.post(f"/api/v1/email-sequences/{sid}/activate", json={}, headers=alice.headers).status_code == 200


def test_a_refused_activation_carries_the_score_and_the_report_the_preflight_gives(client, alice):
    sid = client.post("/api/v1/email-sequences", json=SPAMMY, headers=alice.headers).get_json()["id"]
    report = client.get(f"/api/v1/email-sequences/{sid}/preflight", headers=alice.headers).get_json()
    errors = client.post(f"/api/v1/email-sequences/{sid}/activate", json={}, headers=alice.headers).get_json()["errors"]
    assert errors["preflight"] == {"steps.1": report["emails"][1]["reasons"]}
    assert errors["preflight_report"] == report
    assert errors["preflight_report"]["score"] >= errors["preflight_report"]["fail_score"]


def test_an_email_spamassassin_did_not_read_says_why_without_losing_points(client, alice, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    sid = client.post("/api/v1/email-sequences", json=SPAMMY, headers=alice.headers).get_json()["id"]
    emails = client.get(f"/api/v1/email-sequences/{sid}/preflight", headers=alice.headers).get_json()["emails"]
    assert [e["notices"] for e in emails] == [["SpamAssassin not run: spamc not installed"]] * 2
    assert emails[0]["score"] == 0 and emails[0]["reasons"] == []
