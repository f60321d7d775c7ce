"""The suppression list API: list, add (idempotent, ending enrollments), remove
(which never resubscribes anyone), scoped to the caller's account; and the hosted
unsubscribe page that adds to it."""
from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest
from sqlalchemy import select, update

from delivery.tracking import Tracker
from models import Enrollment, Message, Subscriber, Suppression, db
from models.base import utcnow
from tests.support import factories
from tests.support.engine import run_due
from tests.support.sending import send_in_process

URL = "/api/v1/suppressions"


def _enrolled_subscriber(account_id: int, status: str = "active") -> int:
    seq = factories.sequence(account_id, [{"type": "email", "subject": "x", "text": "x"}])
    [sub] = factories.subscribers(account_id, 1, status=status)
    factories.enroll(account_id, seq, [sub], utcnow())
    return sub


def test_adding_an_address_suppresses_it_and_ends_its_subscribers_enrollments(client, alice):
    sub = _enrolled_subscriber(alice.account_id)
    response = client.post(URL, json={"email": " User0@Example.TEST "}, headers=alice.headers)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["email"] == "user0@example.test" and body["reason"] == "manual" and body["id"]
    with db.session_scope() as s:
        enrollment = s.scalar(select(Enrollment).where(Enrollment.subscriber_id == sub))
        assert (enrollment.status, enrollment.exit_reason) == ("exited", "suppressed")
        assert s.get(Subscriber, sub).status == "active", "suppressing is not unsubscribing"


def test_adding_it_again_answers_200_with_the_existing_entry(client, alice):
    first = client.post(URL, json={"email": "ada@example.test", "reason": "complained"}, headers=alice.headers)
    again = client.post(URL, json={"email": "ADA@example.test"}, headers=alice.headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()
    with db.session_scope() as s:
        assert s.scalar(select(Suppression.reason)) == "complained"


def test_it_lists_filters_and_paginates_the_list(client, alice):
    for email, reason in [("a@example.test", "manual"), ("b@example.test", "bounced"), ("c@example.test", "manual")]:
        assert client.post(URL, json={"email": email, "reason": reason}, headers=alice.headers).status_code == 201
    response = client.get(f"{URL}?reason=manual&page_size=1", headers=alice.headers)
    assert response.status_code == 200
    assert [s["email"] for s in response.get_json()] == ["c@example.test"]
    assert json.loads(response.headers["X-Pagination"])["total"] == 2
    only = client.get(f"{URL}?email=B@Example.test", headers=alice.headers).get_json()
    assert [(s["email"], s["reason"]) for s in only] == [("b@example.test", "bounced")]


def test_removing_takes_the_address_off_the_list_once(client, alice):
    created = client.post(URL, json={"email": "ada@example.test"}, headers=alice.headers).get_json()
    assert client.delete(f"{URL}/{created['id']}", headers=alice.headers).status_code == 204
    assert client.get(URL, headers=alice.headers).get_json() == []
    assert client.delete(f"{URL}/{created['id']}", headers=alice.headers).status_code == 404


def test_removing_does_not_resubscribe_an_unsubscribed_subscriber(client, alice):
    sub = _enrolled_subscriber(alice.account_id, status="unsubscribed")
    created = client.post(URL, json={"email": "user0@example.test", "reason": "unsubscribed"},
                          headers=alice.headers).get_json()
    assert client.delete(f"{URL}/{created['id']}", headers=alice.headers).status_code == 204
    with db.session_scope() as s:
        assert s.get(Subscriber, sub).status == "unsubscribed"
        assert s.scalar(select(Enrollment.status).where(Enrollment.subscriber_id == sub)) == "exited"


def test_alice_cannot_see_or_remove_bobs_suppressions(client, alice, bob):
    bobs = client.post(URL, json={"email": "x@example.test"}, headers=bob.headers).get_json()
    assert client.get(URL, headers=alice.headers).get_json() == []
    assert client.delete(f"{URL}/{bobs['id']}", headers=alice.headers).status_code == 404
    assert [s["id"] for s in client.get(URL, headers=bob.headers).get_json()] == [bobs["id"]]


def test_alice_suppressing_an_address_leaves_bobs_subscriber_enrolled(client, alice, bob):
    sub = _enrolled_subscriber(bob.account_id)
    assert client.post(URL, json={"email": "user0@example.test"}, headers=alice.headers).status_code == 201
    with db.session_scope() as s:
        assert s.scalar(select(Enrollment.status).where(Enrollment.subscriber_id == sub)) == "active"


def test_bad_input_is_a_422_naming_the_field(client, alice):
    for body, field in [({}, "email"), ({"email": "not-an-address"}, "email"), ({"email": 5}, "email"),
                        ({"email": "a@example.test", "reason": "because"}, "reason")]:
        response = client.post(URL, json=body, headers=alice.headers)
        assert response.status_code == 422, body
        assert field in response.get_json()["errors"]["json"], response.get_json()
    response = client.get(f"{URL}?reason=", headers=alice.headers)
    assert response.status_code == 422 and "reason" in response.get_json()["errors"]["query"]


def test_without_credentials_every_endpoint_is_401(client):
    assert client.get(URL).status_code == 401
    assert client.post(URL, json={"email": "a@example.test"}).status_code == 401
    assert client.delete(f"{URL}/1").status_code == 401


class _Forms(HTMLParser):
    """The (method, action) of each form on a page; action None when absent."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            found = dict(attrs)
            self.forms.append(((found.get("method") or "get").lower(), found.get("action")))


def test_the_unsubscribe_page_behind_a_path_prefix_posts_back_to_itself_and_unsubscribes(client, alice, settings):
    # PUBLIC_BASE_URL=https://host.test/mail: a reverse proxy serves the app under /mail.
    sub = _enrolled_subscriber(alice.account_id)
    with db.session_scope() as s:
        message = Message(account_id=alice.account_id, subscriber_id=sub, idempotency_key="page:1",
                          to_email="user0@example.test", status="sent")
        s.add(message)
        s.flush()
        message_id = message.id
    tracker = Tracker(settings.secret_key, "https://host.test/mail")
    token = tracker.unsubscribe_url(alice.account_id, message_id).rsplit("/", 1)[1]
    base = "https://host.test/mail"
    page = client.get(f"/u/{token}", base_url=base)
    assert page.status_code == 200
    forms = _Forms()
    forms.feed(page.get_data(as_text=True))
    [(method, action)] = forms.forms
    # HTML: a form without an action (or with an empty one) posts to the page's own URL.
    target = urljoin(page.request.url, action) if action else page.request.url
    assert (method, target) == ("post", f"{base}/u/{token}")
    with db.session_scope() as s:
        assert s.get(Subscriber, sub).status == "active", "showing the page changes nothing"

    done = client.post(target.removeprefix(base), base_url=base)
    assert done.status_code == 200 and "You are unsubscribed" in done.get_data(as_text=True)
    with db.session_scope() as s:
        assert s.get(Subscriber, sub).status == "unsubscribed"
        assert s.scalar(select(Suppression.reason).where(Suppression.account_id == alice.account_id)) == "unsubscribed"


def test_the_list_is_filtered_by_any_spelling_of_an_address(client, alice):
    client.post(URL, json={"email": "ada@bücher.de"}, headers=alice.headers)
    for spelling in ("ada@bücher.de", "ADA@XN--BCHER-KVA.DE", "Ada@Bücher.DE"):
        found = client.get(URL, query_string={"email": spelling}, headers=alice.headers).get_json()
        assert [row["email"] for row in found] == ["ada@bücher.de"], spelling


@pytest.mark.committing  # were it sent, the send's group-commit thread would record it on a connection of its own
def test_a_subscriber_stored_in_the_punycode_spelling_by_older_code_is_held_by_the_unicode_suppression(client, alice):
    # POST /events used to store the address lower-cased as given.
    seq = factories.sequence(alice.account_id, [{"type": "email", "subject": "x", "text": "x"}])
    with db.session_scope() as s:
        subscriber = Subscriber(account_id=alice.account_id, email="ada@xn--bcher-kva.de", status="active")
        s.add(subscriber)
        s.flush()
        sub = subscriber.id
    factories.enroll(alice.account_id, seq, [sub], utcnow())
    assert client.post(URL, json={"email": "ada@bücher.de"}, headers=alice.headers).status_code == 201
    with db.session_scope() as s:  # the enrollment was ended by address; the send-time check is what this tests
        s.execute(update(Enrollment).values(status="active", exit_reason=None, completed_at=None,
                                            next_run_at=utcnow()))
    queued = run_due(utcnow())
    assert len(queued) == 1
    send_in_process(queued)
    with db.session_scope() as s:
        assert s.get(Message, queued[0]).status == "suppressed"


def test_a_search_for_the_punycode_spelling_finds_the_unicode_subscriber(client, alice):
    client.post("/api/v1/subscribers", json={"email": "ada@bücher.de"}, headers=alice.headers)
    found = client.get("/api/v1/subscribers", query_string={"email": "ADA@xn--bcher-kva.de"},
                       headers=alice.headers).get_json()
    assert [row["email"] for row in found] == ["ada@bücher.de"]
