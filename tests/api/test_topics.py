"""Topics: CRUD scoped to the account, subscribers' topics, bulk adds that leave
those who left alone, and sequences that target a topic."""
from __future__ import annotations

from sqlalchemy import select

from models import Enrollment, Subscriber, TopicSubscription

TOPICS = "/api/v1/topics"
SUBSCRIBERS = "/api/v1/subscribers"
SEQUENCES = "/api/v1/email-sequences"
STEPS = [{"type": "email", "subject": "Hi", "text": "Hello"}]


def topic(client, tenant, key="newsletter", name="Newsletter", **extra):
    response = client.post(TOPICS, json={"key": key, "name": name, **extra}, headers=tenant.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def subscriber(client, tenant, email, **extra):
    response = client.post(SUBSCRIBERS, json={"email": email, **extra}, headers=tenant.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_topic_is_created_listed_read_renamed_and_deleted(client, alice):
    created = topic(client, alice, description="Once a month")
    assert (created["key"], created["name"], created["description"]) == ("newsletter", "Newsletter", "Once a month")
    listed = client.get(TOPICS, headers=alice.headers).get_json()
    assert [t["id"] for t in listed] == [created["id"]]
    renamed = client.patch(f"{TOPICS}/{created['id']}", json={"name": "The letter"}, headers=alice.headers)
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "The letter"
    assert client.get(f"{TOPICS}/{created['id']}", headers=alice.headers).get_json()["name"] == "The letter"
    assert client.delete(f"{TOPICS}/{created['id']}", headers=alice.headers).status_code == 204
    assert client.get(f"{TOPICS}/{created['id']}", headers=alice.headers).status_code == 404


def test_bad_topics_are_refused_naming_the_field(client, alice):
    bad_key = client.post(TOPICS, json={"key": "News Letter", "name": "x"}, headers=alice.headers)
    assert bad_key.status_code == 422 and "key" in bad_key.get_json()["errors"]["json"]
    no_name = client.post(TOPICS, json={"key": "news"}, headers=alice.headers)
    assert no_name.status_code == 422 and "name" in no_name.get_json()["errors"]["json"]
    topic(client, alice)
    twin = client.post(TOPICS, json={"key": "newsletter", "name": "Again"}, headers=alice.headers)
    assert twin.status_code == 409 and "key" in twin.get_json()["errors"]["json"]
    created = client.get(TOPICS, headers=alice.headers).get_json()[0]
    rekey = client.patch(f"{TOPICS}/{created['id']}", json={"key": "other"}, headers=alice.headers)
    assert rekey.status_code == 422 and "key" in rekey.get_json()["errors"]["json"]


def test_another_accounts_topic_is_not_found_and_cannot_be_joined(client, alice, bob):
    alices = topic(client, alice)
    for method in ("get", "patch", "delete"):
        kwargs = {"json": {"name": "Mine"}} if method == "patch" else {}
        assert getattr(client, method)(f"{TOPICS}/{alices['id']}", headers=bob.headers, **kwargs).status_code == 404
    assert client.post(f"{TOPICS}/{alices['id']}/subscribers", json={"emails": ["x@example.com"]},
                       headers=bob.headers).status_code == 404
    assert client.get(TOPICS, headers=bob.headers).get_json() == []
    # Bob's subscriber cannot name Alice's topic by its key: keys are per account.
    refused = client.post(SUBSCRIBERS, json={"email": "b@example.com", "topics": ["newsletter"]}, headers=bob.headers)
    assert refused.status_code == 422 and "topics.0" in refused.get_json()["errors"]["json"]
    # Bob's own topic of the same key is his, and distinct.
    bobs = topic(client, bob)
    assert bobs["id"] != alices["id"]


def test_a_subscriber_joins_topics_on_create_and_patch_replaces_them(client, alice, session):
    topic(client, alice, "newsletter", "Newsletter")
    topic(client, alice, "product", "Product updates")
    created = subscriber(client, alice, "ada@example.com", topics=["newsletter"])
    assert created["topics"] == [{"key": "newsletter", "name": "Newsletter", "status": "subscribed"}]
    patched = client.patch(f"{SUBSCRIBERS}/{created['id']}", json={"topics": ["product"]}, headers=alice.headers)
    assert patched.status_code == 200
    shown = client.get(f"{SUBSCRIBERS}/{created['id']}", headers=alice.headers).get_json()
    assert sorted((t["key"], t["status"]) for t in shown["topics"]) == [("newsletter", "left"), ("product", "subscribed")]


def test_an_unknown_topic_key_is_a_422_naming_its_position_and_writes_nothing(client, alice, session):
    topic(client, alice)
    response = client.post(SUBSCRIBERS, json={"email": "ada@example.com", "topics": ["newsletter", "nope"]},
                           headers=alice.headers)
    assert response.status_code == 422
    assert "topics.1" in response.get_json()["errors"]["json"]
    assert session.scalars(select(Subscriber)).all() == []
    created = subscriber(client, alice, "bea@example.com")
    patch = client.patch(f"{SUBSCRIBERS}/{created['id']}", json={"topics": ["Bad Key"]}, headers=alice.headers)
    assert patch.status_code == 422 and "topics.0" in patch.get_json()["errors"]["json"]


def test_bulk_add_joins_by_id_and_email_but_not_those_who_left(client, alice, session):
    news = topic(client, alice)
    ada = subscriber(client, alice, "ada@example.com")
    bea = subscriber(client, alice, "bea@example.com", topics=["newsletter"])
    client.patch(f"{SUBSCRIBERS}/{bea['id']}", json={"topics": []}, headers=alice.headers)  # bea left
    response = client.post(f"{TOPICS}/{news['id']}/subscribers",
                           json={"subscriber_ids": [ada["id"]], "emails": ["BEA@example.com", "nobody@example.com"]},
                           headers=alice.headers)
    assert response.status_code == 200
    assert response.get_json() == {"added": 1, "skipped": 2}
    statuses = dict(session.execute(select(TopicSubscription.subscriber_id, TopicSubscription.status)).all())
    assert statuses == {ada["id"]: "subscribed", bea["id"]: "left"}
    shown = client.get(f"{TOPICS}/{news['id']}", headers=alice.headers).get_json()
    assert shown["members"] == {"subscribed": 1, "left": 1}
    members = client.get(f"{SUBSCRIBERS}?topic=newsletter", headers=alice.headers).get_json()
    assert [s["email"] for s in members] == ["ada@example.com"]


def test_a_sequence_targets_only_a_topic_of_its_account(client, alice, bob):
    topic(client, bob, "newsletter")
    refused = client.post(SEQUENCES, json={"name": "Letters", "steps": STEPS, "settings": {"topic": "newsletter"}},
                          headers=alice.headers)
    assert refused.status_code == 422
    assert "settings.topic" in str(refused.get_json()["errors"])
    topic(client, alice, "newsletter")
    created = client.post(SEQUENCES, json={"name": "Letters", "steps": STEPS, "settings": {"topic": "newsletter"}},
                          headers=alice.headers)
    assert created.status_code == 201 and created.get_json()["settings"]["topic"] == "newsletter"


def test_enrolling_into_a_topic_sequence_takes_only_its_members(client, alice, session):
    news = topic(client, alice)
    member = subscriber(client, alice, "member@example.com", topics=["newsletter"])
    outsider = subscriber(client, alice, "outsider@example.com")
    sequence = client.post(SEQUENCES, json={"name": "Letters", "steps": STEPS, "settings": {"topic": "newsletter"}},
                           headers=alice.headers).get_json()
    assert client.post(f"{SEQUENCES}/{sequence['id']}/activate", headers=alice.headers).status_code == 200
    response = client.post(f"{SEQUENCES}/{sequence['id']}/subscribers",
                           json={"subscriber_ids": [member["id"], outsider["id"]]}, headers=alice.headers)
    assert response.get_json() == {"enrolled": 1, "skipped": 1}
    assert session.scalars(select(Enrollment.subscriber_id)).all() == [member["id"]]
    # A topic a sequence targets cannot be deleted from under it.
    assert client.delete(f"{TOPICS}/{news['id']}", headers=alice.headers).status_code == 409


def test_a_triggered_topic_sequence_starts_only_for_members(client, alice, session):
    topic(client, alice)
    sequence = client.post(SEQUENCES, json={"name": "Welcome", "steps": STEPS, "settings": {
        "topic": "newsletter", "trigger": {"type": "subscriber_created"}}}, headers=alice.headers).get_json()
    assert client.post(f"{SEQUENCES}/{sequence['id']}/activate", headers=alice.headers).status_code == 200
    member = subscriber(client, alice, "member@example.com", topics=["newsletter"])
    subscriber(client, alice, "outsider@example.com")
    assert session.scalars(select(Enrollment.subscriber_id)).all() == [member["id"]]
