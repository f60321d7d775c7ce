"""Sequences: polymorphic steps validated with named fields, tenancy, and the status machine."""
from __future__ import annotations

import pytest

URL = "/api/v1/email-sequences"
STEPS = [
    {"type": "email", "subject": "Welcome {{ subscriber.first_name }}", "html": "<p>Hi</p>",
     "variants": [{"name": "a"}, {"name": "b", "subject": "Hey there", "weight": 2}]},
    {"type": "delay", "seconds": 86400},
    {"type": "condition", "condition": {"type": "opened"}, "else_goto": "exit"},
    {"type": "action", "action": "add_tag", "tag": "engaged"},
    {"type": "webhook", "url": "https://hooks.example.com/done", "payload": {"stage": "end"}},
]
BODY = {"name": "Onboarding", "description": "First week", "steps": STEPS}


def create(client, tenant, body=None):
    response = client.post(URL, json=body or BODY, headers=tenant.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def subscriber(session, tenant, email="ann@example.com"):
    from models import Subscriber

    row = Subscriber(account_id=tenant.account_id, email=email)
    session.add(row)
    session.commit()
    return row.id


def test_it_creates_a_draft_sequence_with_positioned_steps(client, alice):
    body = create(client, alice)
    assert body["status"] == "draft" and body["version"] == 1 and body["id"]
    assert [(s["position"], s["type"]) for s in body["steps"]] == [
        (0, "email"), (1, "delay"), (2, "condition"), (3, "action"), (4, "webhook")]
    assert body["steps"][1]["seconds"] == 86400
    assert body["steps"][0]["variants"][0] == {"name": "a", "weight": 1}
    assert body["settings"]["reentry"] == "never" and body["settings"]["timezone"] == "UTC"
    assert body["enrollments"] == {}


def test_it_stores_type_and_config_separately_for_the_engine(client, alice, session):
    from models import Step

    created = create(client, alice)
    stored = session.query(Step).filter_by(sequence_id=created["id"], position=3).one()
    assert (stored.type, stored.config) == ("action", {"action": "add_tag", "tag": "engaged"})


def test_it_lists_reads_and_filters_sequences(client, alice):
    first, second = create(client, alice), create(client, alice, {**BODY, "name": "Second"})
    listing = client.get(URL, headers=alice.headers)
    assert [s["id"] for s in listing.get_json()] == [second["id"], first["id"]]
    assert "X-Pagination" in listing.headers
    paged = client.get(URL + "?page=2&page_size=1", headers=alice.headers).get_json()
    assert [s["id"] for s in paged] == [first["id"]]
    assert client.get(URL + "?status=active", headers=alice.headers).get_json() == []
    assert client.get(f"{URL}/{first['id']}", headers=alice.headers).get_json()["name"] == "Onboarding"


def test_it_names_the_step_field_that_is_wrong(client, alice):
    steps = [STEPS[0], {"type": "delay", "seconds": -1}, {"type": "goto", "goto": 12}]
    response = client.post(URL, json={**BODY, "steps": steps}, headers=alice.headers)
    assert response.status_code == 422
    errors = response.get_json()["errors"]["json"]
    assert set(errors) == {"steps.1.seconds", "steps.2.goto"}
    assert "steps.1.seconds" in response.get_json()["message"]


def test_it_names_the_setting_that_is_wrong(client, alice):
    response = client.post(URL, json={**BODY, "settings": {"send_window": {"start": "9"}, "bogus": 1}},
                           headers=alice.headers)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]["json"]) == {"settings.send_window.start", "settings.bogus"}


def test_it_needs_a_name_and_at_least_one_step(client, alice):
    response = client.post(URL, json={"steps": []}, headers=alice.headers)
    assert response.status_code == 422
    assert "name" in response.get_json()["errors"]["json"]
    response = client.post(URL, json={"name": "x", "steps": []}, headers=alice.headers)
    assert set(response.get_json()["errors"]["json"]) == {"steps"}


@pytest.mark.parametrize("body", [
    None, [], "steps", {"name": "x"}, {"name": "x", "steps": None}, {"name": "x", "steps": "email"},
    {"name": "x", "steps": {"type": "email"}}, {"name": "x", "steps": [None]}, {"name": "x", "steps": [[1]]},
    {"name": "x", "steps": [{"type": 5}]}, {"name": "x", "steps": [{"type": ["email"]}]},
    {"name": "x", "steps": [{"type": "delay", "seconds": 10**400}]},
    {"name": "x", "steps": [{"type": "delay", "seconds": 1e308}]},
    {"name": "x", "steps": [{"type": "goto", "goto": 10**30}]},
    {"name": "x", "steps": [{"type": "email", "template_id": 10**30}]},
    {"name": "x", "steps": [{"type": "email", "subject": {"a": 1}}]},
    {"name": "x", "steps": [{"type": "action", "action": "move_to_sequence", "sequence_id": -1}]},
    {"name": "x", "steps": [{"type": "action", "action": "set_attribute", "name": "a", "value": "\x00"}]},
    {"name": "x", "steps": [{"type": "webhook", "url": "https://x.test", "payload": {"\x00": 1}}]},
    {"name": "x", "steps": [{"type": "delay", "seconds": 5}] * 201},
    {"name": "x\x00", "steps": [{"type": "delay", "seconds": 5}]},
    {"name": "x", "settings": "daily", "steps": [{"type": "delay", "seconds": 5}]},
    {"name": "x", "settings": {"quiet_days": [None, 3]}, "steps": [{"type": "delay", "seconds": 5}]},
])
def test_it_never_fails_with_a_500_on_malformed_input(client, alice, body):
    response = client.post(URL, json=body, headers=alice.headers)
    assert response.status_code == 422, response.get_json()


def test_it_refuses_nan_smuggled_in_as_json(client, alice):
    raw = '{"name": "x", "steps": [{"type": "delay", "seconds": NaN}]}'
    response = client.post(URL, data=raw, content_type="application/json", headers=alice.headers)
    assert response.status_code in (400, 422)


def test_it_refuses_a_template_or_sequence_of_another_account_in_steps(client, alice, bob):
    bobs_template = client.post("/api/v1/templates", json={"name": "t", "subject": "s"}, headers=bob.headers).get_json()
    bobs_sequence = create(client, bob)
    steps = [{"type": "email", "template_id": bobs_template["id"]},
             {"type": "action", "action": "move_to_sequence", "sequence_id": bobs_sequence["id"]}]
    response = client.post(URL, json={"name": "x", "steps": steps}, headers=alice.headers)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]["json"]) == {"steps.0.template_id", "steps.1.sequence_id"}


def test_it_requires_credentials(client, alice):
    sequence = create(client, alice)
    for method, path in (("get", URL), ("post", URL), ("get", f"{URL}/{sequence['id']}"),
                         ("put", f"{URL}/{sequence['id']}"), ("delete", f"{URL}/{sequence['id']}"),
                         ("post", f"{URL}/{sequence['id']}/activate"), ("post", f"{URL}/{sequence['id']}/pause"),
                         ("post", f"{URL}/{sequence['id']}/resume")):
        assert getattr(client, method)(path, json=BODY).status_code == 401, path


def test_it_hides_alices_sequences_from_bob(client, alice, bob):
    sequence = create(client, alice)
    path = f"{URL}/{sequence['id']}"
    assert client.get(path, headers=bob.headers).status_code == 404
    assert client.put(path, json=BODY, headers=bob.headers).status_code == 404
    assert client.delete(path, headers=bob.headers).status_code == 404
    for action in ("activate", "pause", "resume"):
        assert client.post(f"{path}/{action}", headers=bob.headers).status_code == 404
    assert client.get(URL, headers=bob.headers).get_json() == []
    assert client.get(path, headers=alice.headers).get_json()["status"] == "draft"
    assert client.get(f"{URL}/99999999999999", headers=alice.headers).status_code == 404


def test_it_walks_draft_active_paused_active(client, alice, session):
    from models import Enrollment

    sequence = create(client, alice)
    path = f"{URL}/{sequence['id']}"
    assert client.post(f"{path}/pause", headers=alice.headers).status_code == 409
    assert client.post(f"{path}/resume", headers=alice.headers).status_code == 409
    assert client.post(f"{path}/activate", headers=alice.headers).get_json()["status"] == "active"
    assert client.post(f"{path}/activate", headers=alice.headers).status_code == 409

    enrolled = client.post(f"{path}/subscribers", json={"subscriber_ids": [subscriber(session, alice)]},
                           headers=alice.headers)
    assert enrolled.get_json()["enrolled"] == 1

    paused = client.post(f"{path}/pause", headers=alice.headers).get_json()
    assert paused["status"] == "paused" and paused["enrollments"] == {"paused": 1}
    assert session.query(Enrollment).one().status == "paused"
    resumed = client.post(f"{path}/resume", headers=alice.headers).get_json()
    assert resumed["status"] == "active" and resumed["enrollments"] == {"active": 1}


def test_it_refuses_to_activate_when_a_referenced_sequence_is_gone(client, alice):
    target = create(client, alice)
    mover = create(client, alice, {"name": "m", "steps": [
        {"type": "action", "action": "move_to_sequence", "sequence_id": target["id"]}]})
    assert client.delete(f"{URL}/{target['id']}", headers=alice.headers).status_code == 204
    response = client.post(f"{URL}/{mover['id']}/activate", headers=alice.headers)
    assert response.status_code == 422
    assert "steps.0.sequence_id" in response.get_json()["errors"]["json"]


def test_it_replaces_steps_bumps_the_version_and_clamps_running_enrollments(client, alice, session):
    from models import Enrollment, Step

    sequence = create(client, alice)
    path = f"{URL}/{sequence['id']}"
    client.post(f"{path}/activate", headers=alice.headers)
    client.post(f"{path}/subscribers", json={"subscriber_ids": [subscriber(session, alice)]}, headers=alice.headers)
    session.query(Enrollment).update({"current_step": 4})
    session.commit()
    first_step_id = session.query(Step).filter_by(sequence_id=sequence["id"], position=0).one().id

    replaced = client.put(path, json={"name": "Shorter", "steps": [{"type": "email", "subject": "New"},
                                                                   {"type": "delay", "days": 2}]},
                          headers=alice.headers)
    assert replaced.status_code == 200
    body = replaced.get_json()
    assert body["version"] == 2 and body["name"] == "Shorter" and body["description"] is None
    assert [s["type"] for s in body["steps"]] == ["email", "delay"]
    assert body["steps"][0]["id"] == first_step_id  # positions that survive keep their step row
    session.expire_all()
    assert session.query(Enrollment).one().current_step == 1
    assert session.query(Step).filter_by(sequence_id=sequence["id"]).count() == 2


def test_it_accepts_its_own_get_body_back_on_put(client, alice):
    sequence = create(client, alice)
    fetched = client.get(f"{URL}/{sequence['id']}", headers=alice.headers).get_json()
    body = {"name": fetched["name"], "description": fetched["description"], "settings": fetched["settings"],
            "steps": fetched["steps"]}
    response = client.put(f"{URL}/{sequence['id']}", json=body, headers=alice.headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["steps"] == fetched["steps"]


def test_it_validates_a_replacement_like_a_creation(client, alice):
    sequence = create(client, alice)
    response = client.put(f"{URL}/{sequence['id']}", json={"name": "x", "steps": [{"type": "delay"}]},
                          headers=alice.headers)
    assert response.status_code == 422 and "steps.0.seconds" in response.get_json()["errors"]["json"]
    assert client.get(f"{URL}/{sequence['id']}", headers=alice.headers).get_json()["version"] == 1


def test_it_deletes_a_sequence_with_its_enrollments(client, alice, session):
    from models import Enrollment

    sequence = create(client, alice)
    path = f"{URL}/{sequence['id']}"
    client.post(f"{path}/activate", headers=alice.headers)
    client.post(f"{path}/subscribers", json={"emails": ["x@example.com"]}, headers=alice.headers)
    assert client.delete(path, headers=alice.headers).status_code == 204
    assert client.get(path, headers=alice.headers).status_code == 404
    assert session.query(Enrollment).count() == 0
