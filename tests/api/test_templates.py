"""Templates: CRUD scoped to the account, Jinja checked on save, previews for a subscriber."""
from __future__ import annotations

URL = "/api/v1/templates"
WELCOME = {"name": "Welcome", "subject": "Hi {{ subscriber.first_name }}",
           "html": "<p>Plan: {{ subscriber.attributes.plan }}</p>", "text": None}


def create(client, tenant, body=None):
    response = client.post(URL, json=body or WELCOME, headers=tenant.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_it_creates_lists_reads_replaces_and_deletes_a_template(client, alice):
    created = create(client, alice)
    assert created["subject"] == WELCOME["subject"] and created["id"]

    listing = client.get(URL, headers=alice.headers)
    assert listing.status_code == 200 and [t["id"] for t in listing.get_json()] == [created["id"]]
    assert "X-Pagination" in listing.headers

    assert client.get(f"{URL}/{created['id']}", headers=alice.headers).get_json()["name"] == "Welcome"
    replaced = client.put(f"{URL}/{created['id']}", json={"name": "Hello", "subject": "Yo"}, headers=alice.headers)
    assert replaced.status_code == 200 and replaced.get_json()["html"] is None

    assert client.delete(f"{URL}/{created['id']}", headers=alice.headers).status_code == 204
    assert client.get(f"{URL}/{created['id']}", headers=alice.headers).status_code == 404


def test_it_requires_credentials(client, alice):
    created = create(client, alice)
    assert client.get(URL).status_code == 401
    assert client.post(URL, json=WELCOME).status_code == 401
    assert client.get(f"{URL}/{created['id']}").status_code == 401
    assert client.post(f"{URL}/{created['id']}/preview", json={}).status_code == 401


def test_it_hides_alices_templates_from_bob(client, alice, bob):
    created = create(client, alice)
    path = f"{URL}/{created['id']}"
    assert client.get(path, headers=bob.headers).status_code == 404
    assert client.put(path, json={"name": "x", "subject": "y"}, headers=bob.headers).status_code == 404
    assert client.delete(path, headers=bob.headers).status_code == 404
    assert client.post(f"{path}/preview", json={}, headers=bob.headers).status_code == 404
    assert client.get(URL, headers=bob.headers).get_json() == []


def test_it_names_the_invalid_fields(client, alice):
    response = client.post(URL, json={"name": "", "subject": "{{ broken", "html": "{% for %}", "extra": 1},
                           headers=alice.headers)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]["json"]) == {"name", "subject", "html", "extra"}


def test_it_refuses_inputs_the_database_could_not_store(client, alice):
    for body in ({"name": "a\x00b", "subject": "x"}, {"name": "a", "subject": "x" * 999},
                 {"name": "a", "subject": "line\nbreak"}, {"name": None, "subject": "x"}, [1, 2], "text"):
        assert client.post(URL, json=body, headers=alice.headers).status_code == 422, body


def test_it_answers_404_for_ids_beyond_the_database_range(client, alice):
    assert client.get(f"{URL}/99999999999999999999", headers=alice.headers).status_code == 404


def test_it_previews_for_a_stored_subscriber(client, alice, session):
    from models import Subscriber

    subscriber = Subscriber(account_id=alice.account_id, email="ann@example.com", first_name="Ann",
                            attributes={"plan": "pro"})
    session.add(subscriber)
    session.commit()
    created = create(client, alice)
    response = client.post(f"{URL}/{created['id']}/preview", json={"subscriber_id": subscriber.id},
                           headers=alice.headers)
    assert response.status_code == 200
    assert response.get_json() == {"subject": "Hi Ann", "html": "<p>Plan: pro</p>", "text": "Plan: pro"}


def test_it_previews_for_a_sample_subscriber_and_escapes_html(client, alice):
    created = create(client, alice)
    sample = {"first_name": "Bo", "attributes": {"plan": "<b>gold</b>"}}
    body = client.post(f"{URL}/{created['id']}/preview", json={"subscriber": sample}, headers=alice.headers).get_json()
    assert body["subject"] == "Hi Bo"
    assert "&lt;b&gt;gold&lt;/b&gt;" in body["html"]


def test_it_will_not_preview_with_bobs_subscriber(client, alice, bob, session):
    from models import Subscriber

    theirs = Subscriber(account_id=bob.account_id, email="b@example.com", first_name="Secret")
    session.add(theirs)
    session.commit()
    created = create(client, alice)
    response = client.post(f"{URL}/{created['id']}/preview", json={"subscriber_id": theirs.id}, headers=alice.headers)
    assert response.status_code == 404


def test_it_reports_a_template_that_fails_at_render_time_as_422(client, alice):
    created = create(client, alice, {"name": "n", "subject": "{{ 1 / 0 }}"})
    response = client.post(f"{URL}/{created['id']}/preview", json={}, headers=alice.headers)
    assert response.status_code == 422


def test_it_refuses_to_delete_a_template_a_sequence_uses(client, alice):
    created = create(client, alice)
    sequence = client.post("/api/v1/email-sequences", json={
        "name": "Onboarding", "steps": [{"type": "email", "template_id": created["id"]}]}, headers=alice.headers)
    assert sequence.status_code == 201, sequence.get_json()
    response = client.delete(f"{URL}/{created['id']}", headers=alice.headers)
    assert response.status_code == 409
    assert str(sequence.get_json()["id"]) in response.get_json()["message"]
