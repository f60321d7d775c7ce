"""Content that goes live without activation (replacing an active sequence, or a
template active sequences use) passes the same pre-flight check, or needs the same
explicit override; so does resuming a paused sequence."""
from __future__ import annotations

CLEAN = {"type": "email", "subject": "Welcome", "text": "Hello and welcome."}
SPAM = {"type": "email", "subject": "ACT NOW!!! FREE MONEY", "html": "<p>100% free, click here, winner</p>"}


def _active(client, account, steps):
    sid = client.post("/api/v1/email-sequences", json={"name": "Live", "steps": steps},
                      headers=account.headers).get_json()["id"]
    assert client.post(f"/api/v1/email-sequences/{sid}/activate", headers=account.headers).status_code == 200
    return sid


def _steps(client, account, sid):
    return [s.get("subject") for s in
            client.get(f"/api/v1/email-sequences/{sid}", headers=account.headers).get_json()["steps"]]


def test_replacing_an_active_sequence_with_failing_content_is_refused_and_changes_nothing(client, alice):
    sid = _active(client, alice, [CLEAN])
    response = client.put(f"/api/v1/email-sequences/{sid}", json={"name": "Live", "steps": [CLEAN, SPAM]},
                          headers=alice.headers)
    assert response.status_code == 422
    assert list(response.get_json()["errors"]["preflight"]) == ["steps.1"]
    body = client.get(f"/api/v1/email-sequences/{sid}", headers=alice.headers).get_json()
    assert body["version"] == 1 and body["status"] == "active" and _steps(client, alice, sid) == ["Welcome"]


def test_an_active_sequence_takes_failing_content_with_the_override_and_a_draft_without_a_check(client, alice):
    sid = _active(client, alice, [CLEAN])
    response = client.put(f"/api/v1/email-sequences/{sid}", headers=alice.headers,
                          json={"name": "Live", "steps": [CLEAN, SPAM], "override_preflight": True})
    assert response.status_code == 200 and response.get_json()["version"] == 2
    assert "override_preflight" not in response.get_json()
    draft = client.post("/api/v1/email-sequences", json={"name": "Draft", "steps": [CLEAN]},
                        headers=alice.headers).get_json()["id"]
    assert client.put(f"/api/v1/email-sequences/{draft}", json={"name": "Draft", "steps": [SPAM]},
                      headers=alice.headers).status_code == 200


def test_resuming_a_failing_sequence_needs_the_override_again(client, alice):
    sid = client.post("/api/v1/email-sequences", json={"name": "Blast", "steps": [SPAM]},
                      headers=alice.headers).get_json()["id"]
    assert client.post(f"/api/v1/email-sequences/{sid}/activate", json={"override_preflight": True},
                       headers=alice.headers).status_code == 200
    assert client.post(f"/api/v1/email-sequences/{sid}/pause", headers=alice.headers).status_code == 200
    refused = client.post(f"/api/v1/email-sequences/{sid}/resume", headers=alice.headers)
    assert refused.status_code == 422 and list(refused.get_json()["errors"]["preflight"]) == ["steps.0"]
    resumed = client.post(f"/api/v1/email-sequences/{sid}/resume", json={"override_preflight": True},
                          headers=alice.headers)
    assert resumed.status_code == 200 and resumed.get_json()["status"] == "active"


def test_a_template_an_active_sequence_uses_cannot_turn_spammy_without_the_override(client, alice):
    template = {"name": "T", "subject": "Welcome", "text": "Hello and welcome."}
    tid = client.post("/api/v1/templates", json=template, headers=alice.headers).get_json()["id"]
    sid = _active(client, alice, [CLEAN, {"type": "email", "template_id": tid}])
    spammy = {"name": "T", "subject": "ACT NOW!!! FREE MONEY", "html": "<p>100% free, click here, winner</p>"}
    response = client.put(f"/api/v1/templates/{tid}", json=spammy, headers=alice.headers)
    assert response.status_code == 422
    assert list(response.get_json()["errors"]["preflight"]) == [f"sequences.{sid}.steps.1"]
    assert client.get(f"/api/v1/templates/{tid}", headers=alice.headers).get_json()["subject"] == "Welcome"
    forced = client.put(f"/api/v1/templates/{tid}", json={**spammy, "override_preflight": True},
                        headers=alice.headers)
    assert forced.status_code == 200 and forced.get_json()["subject"] == "ACT NOW!!! FREE MONEY"


def test_a_template_only_drafts_and_paused_sequences_use_changes_without_a_check(client, alice):
    tid = client.post("/api/v1/templates", json={"name": "T", "subject": "Hi", "text": "Hello."},
                      headers=alice.headers).get_json()["id"]
    client.post("/api/v1/email-sequences", json={"name": "D", "steps": [{"type": "email", "template_id": tid}]},
                headers=alice.headers)
    spammy = {"name": "T", "subject": "ACT NOW!!! FREE MONEY", "html": "<p>100% free, click here, winner</p>"}
    assert client.put(f"/api/v1/templates/{tid}", json=spammy, headers=alice.headers).status_code == 200
