"""Provider webhooks under hostile or unusual input: another tenant's event ids, a
reused Mailgun token, Mailgun ids that repeat across days, text PostgreSQL cannot
store, requests that must be refused (never with a 500), SES topics nobody
configured, bodies too big to read, and failures that are not the address's fault.

Each test is one finding of the provider-webhook review; processing is run in
the test (process_events) on the ids the view hands to the queue.
"""
from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import select

from inbound.store import process_events
from models import Event, InboundEvent, Provider, Subscriber, Suppression, db
from tests.api.test_provider_webhooks import (MG_KEY, PM_PASSWORD, PM_USER, SNS_CERT, mailgun_body, mailgun_failed,
                                              postmark_bounce, sent_message, ses_bounce, sns_envelope, url)
from tests.support.provider_signing import NOW, SG_PUBLIC, sendgrid_headers

JSON = {"Content-Type": "application/json"}
DAY = 86400
WEBHOOK_BODY_CAP = 5 * 1024 * 1024  # web.provider_webhooks.MAX_BODY_BYTES


@pytest.fixture
def dispatched(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The inbound event ids each request hands to the queue, in order."""
    import tasks.inbound

    ids: list[int] = []
    monkeypatch.setattr(tasks.inbound.process_inbound, "apply_async", lambda args, **_: ids.extend(args[0]))
    return ids


@pytest.fixture
def no_propagation(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unhandled errors answer 500, as in production, instead of raising in the test."""
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)


def add_provider(account_id: int, kind: str, config: dict[str, Any]) -> None:
    with db.session_scope() as s:
        s.add(Provider(account_id=account_id, name=kind, kind=kind, config=config))


def process(ids: list[int]) -> dict[str, int]:
    with db.session_scope() as s:
        return process_events(s, ids, datetime.now(timezone.utc))


def rows(**where: Any) -> list[InboundEvent]:
    with db.session_scope() as s:
        query = select(InboundEvent).order_by(InboundEvent.id)
        for name, value in where.items():
            query = query.where(getattr(InboundEvent, name) == value)
        found = list(s.scalars(query))
        s.expunge_all()
        return found


def suppressed(account_id: int) -> list[str]:
    with db.session_scope() as s:
        return list(s.scalars(select(Suppression.email).where(Suppression.account_id == account_id)))


def events_named(name: str) -> list[Event]:
    with db.session_scope() as s:
        found = list(s.scalars(select(Event).where(Event.name == name)))
        s.expunge_all()
        return found


# --- 1. duplicates are per account ---

def test_another_accounts_event_id_does_not_preempt_yours(client, settings, alice, bob, dispatched):
    """Postmark bounce IDs are short and sequential: Bob, with his own credentials on
    his own URL, posts a bounce with the ID Alice's real bounce will have."""
    add_provider(alice.account_id, "postmark", {"webhook_username": PM_USER, "webhook_password": PM_PASSWORD})
    add_provider(bob.account_id, "postmark", {"webhook_username": "bob", "webhook_password": "bob-password"})
    sent_message(alice.account_id, "postmark", "alice-msg-1")
    bobs = client.post(url(settings, "postmark", bob.account_id), data=postmark_bounce("whatever", bounce_id=777),
                       headers=JSON, auth=("bob", "bob-password"))
    assert bobs.status_code == 200
    del dispatched[:]

    alices = client.post(url(settings, "postmark", alice.account_id), data=postmark_bounce("alice-msg-1", bounce_id=777),
                         headers=JSON, auth=(PM_USER, PM_PASSWORD))
    assert alices.status_code == 200 and alices.get_json()["queued"] == 1
    [alice_row] = rows(account_id=alice.account_id)
    assert alice_row.provider_event_id == "bounce:777"
    assert dispatched == [alice_row.id]  # her own event, not Bob's still-pending row
    process(dispatched)
    assert suppressed(alice.account_id) == ["user0@example.test"]
    assert suppressed(bob.account_id) == []


# --- 2. Mailgun: the token is recorded whatever happens to the event ---

def test_a_mailgun_token_is_spent_even_when_its_event_was_already_stored(client, settings, alice, dispatched):
    add_provider(alice.account_id, "mailgun", {"webhook_signing_key": MG_KEY})
    sent_message(alice.account_id, "mailgun", "victim@mg")
    target = url(settings, "mailgun", alice.account_id)
    delivered = {**mailgun_failed(event_id="ev-1"), "event": "delivered", "severity": None}
    assert client.post(target, data=mailgun_body(delivered, token="a" * 50), headers=JSON).status_code == 200
    # The same event again under a fresh token: stored once, but the token is now used.
    assert client.post(target, data=mailgun_body(delivered, token="b" * 50), headers=JSON).status_code == 200
    assert len(rows()) == 1

    # Whoever captured that second request swaps in forged event-data under its signature.
    forged = mailgun_failed(message_id="victim@mg", event_id="forged-1")
    replay = client.post(target, data=mailgun_body(forged, token="b" * 50), headers=JSON)
    assert replay.status_code == 200 and replay.get_json()["queued"] == 0
    assert [r.provider_event_id for r in rows()] == [f"ev-1@{NOW - 5}"]
    process(dispatched)
    assert suppressed(alice.account_id) == []


def test_mailgun_events_sharing_an_id_on_different_days_are_both_kept(client, settings, alice, dispatched):
    """Mailgun's event id is unique only within a day; a retry of one event is still stored once."""
    add_provider(alice.account_id, "mailgun", {"webhook_signing_key": MG_KEY})
    sent_message(alice.account_id, "mailgun", "m2@mg")
    target = url(settings, "mailgun", alice.account_id)
    yesterday = {**mailgun_failed(message_id="m2@mg", event_id="same-id"), "event": "opened", "timestamp": NOW - DAY}
    today = {**mailgun_failed(message_id="m2@mg", event_id="same-id"), "timestamp": NOW - 5.25}
    assert client.post(target, data=mailgun_body(yesterday, token="c" * 50), headers=JSON).status_code == 200
    assert client.post(target, data=mailgun_body(today, token="d" * 50), headers=JSON).get_json()["queued"] == 1
    # Mailgun sending today's event again (a new signature) stores nothing new.
    assert client.post(target, data=mailgun_body(today, token="e" * 50), headers=JSON).status_code == 200
    assert [r.kind for r in rows()] == ["opened", "bounced"]
    process(dispatched)
    assert suppressed(alice.account_id) == ["user0@example.test"]


# --- 3. text PostgreSQL cannot store ---

def test_a_nul_or_an_infinite_number_in_one_event_does_not_lose_the_batch(client, settings, alice, dispatched):
    add_provider(alice.account_id, "sendgrid", {"webhook_public_key": SG_PUBLIC})
    sent_message(alice.account_id, "sendgrid", "m1")
    body = (json.dumps([
        {"event": "bounce", "type": "bounce", "sg_event_id": "b1", "sg_message_id": "m1.filter1", "timestamp": NOW,
         "email": "user0@example.test", "bounce_classification": "Invalid Address", "reason": "550 no\u0000 such user"},
        {"event": "open", "sg_event_id": "o1", "sg_message_id": "m2.filter1", "timestamp": NOW,
         "useragent": "evil\u0000agent", "k\u0000ey": "v"},
        {"event": "click", "sg_event_id": "c1", "sg_message_id": "m3.filter1", "timestamp": NOW, "score": 1}])
        .replace('"score": 1', '"score": 1e400').encode())  # valid JSON that Python reads as inf
    response = client.post(url(settings, "sendgrid", alice.account_id), data=body, headers=sendgrid_headers(body))
    assert response.status_code == 200, response.get_json()
    bounce, opened, click = rows()
    assert bounce.payload["reason"] == "550 no such user"
    assert opened.payload["event"]["useragent"] == "evilagent" and opened.payload["event"]["key"] == "v"
    assert click.payload["event"]["score"] == "inf"
    process(dispatched)
    assert suppressed(alice.account_id) == ["user0@example.test"]


def test_a_lone_surrogate_in_a_postmark_record_is_stored_replaced(client, settings, alice, no_propagation):
    add_provider(alice.account_id, "postmark", {"webhook_username": PM_USER, "webhook_password": PM_PASSWORD})
    record = json.loads(postmark_bounce())
    record["Content"], record["Details"] = "dump \ud800 end", "550 \udfff"
    body = json.dumps(record).encode()  # ASCII-escaped: valid JSON
    response = client.post(url(settings, "postmark", alice.account_id), data=body, headers=JSON,
                           auth=(PM_USER, PM_PASSWORD))
    assert response.status_code == 200, response.get_json()
    [row] = rows()
    assert row.payload["event"]["Content"] == "dump \ufffd end"
    assert row.payload["reason"].startswith("The server was unable")


# --- 4. refusals never answer 500 ---

def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("case, expected", [
    ("signature not ASCII", 401), ("token with a lone surrogate", 401), ("account digest not ASCII", 401),
    ("account id a superscript digit", 401), ("integer past the digit limit", 400), ("deeply nested body", 400)])
def test_a_request_that_cannot_be_authenticated_is_refused_not_a_server_error(
        client, settings, alice, no_propagation, case, expected):
    add_provider(alice.account_id, "mailgun", {"webhook_signing_key": MG_KEY})
    target = url(settings, "mailgun", alice.account_id)
    document = json.loads(mailgun_body(mailgun_failed()))
    body = None
    if case == "signature not ASCII":
        document["signature"]["signature"] = "\u00e9" * 64
    elif case == "token with a lone surrogate":
        document["signature"]["token"] = "\ud800" * 50
    elif case == "account digest not ASCII":
        target = f"/webhooks/mailgun/{alice.account_id}-%C3%A9"
    elif case == "account id a superscript digit":
        target = "/webhooks/mailgun/%C2%B2-" + "0" * 40  # "²".isdigit() is True, int("²") raises
    elif case == "integer past the digit limit":
        body = b'{"signature": ' + b"1" * 5000 + b"}"
    else:
        body = _deep(100_000)
    body = body if body is not None else json.dumps(document).encode()
    response = client.post(target, data=body, headers=JSON)
    assert response.status_code == expected, (case, response.status_code)
    assert rows() == []


# --- 5. only a bad address suppresses ---

def test_a_postmark_spam_notification_is_a_soft_bounce_not_a_complaint(client, settings, alice, dispatched):
    add_provider(alice.account_id, "postmark", {"webhook_username": PM_USER, "webhook_password": PM_PASSWORD})
    ids = sent_message(alice.account_id, "postmark", "pm-spam-1")
    response = client.post(url(settings, "postmark", alice.account_id),
                           data=postmark_bounce("pm-spam-1", kind="SpamNotification"), headers=JSON,
                           auth=(PM_USER, PM_PASSWORD))
    assert response.status_code == 200
    assert process(dispatched) == {"processed": 1}
    assert suppressed(alice.account_id) == []
    assert events_named("complained") == []
    [bounce] = events_named("bounced")
    assert bounce.properties["bounce_type"] == "soft"
    with db.session_scope() as s:
        assert s.get(Subscriber, ids["subscriber"]).status == "active"


@pytest.mark.parametrize("provider", ["mailgun", "sendgrid"])
def test_a_policy_block_is_recorded_and_suppresses_nobody(client, settings, alice, dispatched, provider):
    """A spam filter or blocklist (5.7.1) says nothing against the address."""
    if provider == "mailgun":
        add_provider(alice.account_id, "mailgun", {"webhook_signing_key": MG_KEY})
        sent_message(alice.account_id, "mailgun", "blocked@mg")
        data = {**mailgun_failed(message_id="blocked@mg"), "reason": "generic",
                "delivery-status": {"code": 550, "message": "5.7.1 Message rejected as spam", "description": ""}}
        body, headers = mailgun_body(data), JSON
    else:
        add_provider(alice.account_id, "sendgrid", {"webhook_public_key": SG_PUBLIC})
        sent_message(alice.account_id, "sendgrid", "blocked-sg")
        body = json.dumps([{"event": "bounce", "type": "bounce", "sg_event_id": "b-rep", "timestamp": NOW,
                            "sg_message_id": "blocked-sg.filter1", "email": "user0@example.test",
                            "status": "5.7.1", "reason": "550 5.7.1 blocked using Spamhaus",
                            "bounce_classification": "Reputation"}]).encode()
        headers = sendgrid_headers(body)
    assert client.post(url(settings, provider, alice.account_id), data=body, headers=headers).status_code == 200
    assert process(dispatched) == {"processed": 1}
    [bounce] = events_named("bounced")
    assert bounce.properties["bounce_type"] == "soft"
    assert suppressed(alice.account_id) == []


# --- 8. SES needs configured topics on an account's URL too ---

@pytest.mark.parametrize("config", [None, {"access_key_id": "AKID", "secret_access_key": "x", "region": "us-east-1"},
                                    {"region": "us-east-1", "webhook_topic_arns": []}])
def test_an_account_without_ses_topics_accepts_no_sns_message(client, settings, alice, app, monkeypatch, config):
    """The signature proves SNS sent it, not whose topic it was: anyone can
    subscribe this URL to a topic of their own and publish signed messages."""
    fetched: list[str] = []
    monkeypatch.setitem(app.config, "ESEQ_SNS_CERT_FETCHER", lambda u: fetched.append(u) or SNS_CERT)
    visited: list[str] = []
    monkeypatch.setitem(app.config, "ESEQ_SNS_SUBSCRIBE_VISITOR", visited.append)
    if config is not None:
        add_provider(alice.account_id, "ses", config)
    target = url(settings, "ses", alice.account_id)
    attacker = "arn:aws:sns:us-east-1:999999999999:attacker"
    for envelope in (sns_envelope(ses_bounce(), topic=attacker), sns_envelope({}, kind="SubscriptionConfirmation",
                                                                             topic=attacker)):
        response = client.post(target, data=json.dumps(envelope).encode())
        assert response.status_code == 401, response.get_json()
    assert rows() == [] and visited == [] and fetched == []


# --- 7. the body cap ---

def test_a_webhook_body_over_the_cap_is_refused_before_it_is_read(client, settings, alice):
    add_provider(alice.account_id, "sendgrid", {"webhook_public_key": SG_PUBLIC})
    target = url(settings, "sendgrid", alice.account_id)
    big = b"[" + b" " * WEBHOOK_BODY_CAP + b"]"  # validly signed: only its size is wrong
    response = client.post(target, data=big, headers=sendgrid_headers(big))
    assert response.status_code == 413
    assert response.get_json()["status"] == 413
    # A chunked body (no Content-Length) is cut off while it is read.
    chunked = client.post(target, input_stream=io.BytesIO(big),
                          headers={**sendgrid_headers(big), "Transfer-Encoding": "chunked"},
                          environ_overrides={"wsgi.input_terminated": True})  # as gunicorn marks one
    assert chunked.status_code == 413
    assert rows() == []
    # Other routes keep their own limit (templates take 8 MiB: web/limits.py).
    assert client.post("/api/v1/templates", data=big, headers={"Content-Type": "application/json",
                                                               **alice.headers}).status_code != 413
