"""The public subscribe form and double opt-in: pending subscribers, the
confirmation queued in the outbox, confirming, expiry, the honeypot, the limits
per IP and per address, one answer for every address, and single opt-in."""
from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import select

from audience.opt_in import CONFIRMATION_KIND, ConfirmationError, confirm, expire_pending
from models import Enrollment, Message, Subscriber, Suppression, TopicSubscription, db, utcnow

SEQUENCES = "/api/v1/email-sequences"


@pytest.fixture
def ip() -> dict[str, dict[str, str]]:
    """A client address of this test's own, so the per-IP limit counts its posts alone."""
    return {"environ_base": {"REMOTE_ADDR": f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"}}


def form_key(client, tenant, opt_in: str = "double") -> str:
    response = client.patch("/api/v1/account", json={"opt_in": opt_in}, headers=tenant.headers)
    assert response.status_code == 200 and response.get_json()["opt_in"] == opt_in
    return response.get_json()["form_key"]


def topic(client, tenant, key="newsletter", name="Newsletter"):
    return client.post("/api/v1/topics", json={"key": key, "name": name}, headers=tenant.headers).get_json()


def welcome_sequence(client, tenant):
    body = {"name": "Welcome", "steps": [{"type": "email", "subject": "Hi", "text": "Hello"}],
            "settings": {"trigger": {"type": "subscriber_created"}}}
    sequence = client.post(SEQUENCES, json=body, headers=tenant.headers).get_json()
    assert client.post(f"{SEQUENCES}/{sequence['id']}/activate", headers=tenant.headers).status_code == 200
    return sequence["id"]


def subscribers() -> dict[str, str]:
    with db.session_scope() as s:
        return dict(s.execute(select(Subscriber.email, Subscriber.status)).all())


def confirmations() -> list[Message]:
    with db.session_scope() as s:
        rows = s.scalars(select(Message).order_by(Message.id)).all()
        s.expunge_all()
    assert all(m.meta["kind"] == CONFIRMATION_KIND and m.step_id is None for m in rows)
    return list(rows)


def token_of(message: Message) -> str:
    return re.search(r"/subscribe/confirm/(\S+)", message.meta["text"]).group(1)


def enrolled() -> list[int]:
    with db.session_scope() as s:
        return list(s.scalars(select(Enrollment.subscriber_id)))


def test_double_opt_in_makes_a_pending_subscriber_and_queues_only_the_confirmation(client, alice, ip):
    key = form_key(client, alice)
    topic(client, alice)
    welcome_sequence(client, alice)
    response = client.post(f"/subscribe/{key}", json={"email": "Ada@Example.com", "first_name": "Ada",
                                                      "topics": ["newsletter"]}, **ip)
    assert response.status_code == 202 and response.get_json()["status"] == "accepted"
    assert subscribers() == {"ada@example.com": "pending"}
    [message] = confirmations()
    assert (message.status, message.to_email, message.sequence_id) == ("queued", "ada@example.com", None)
    assert "http://localhost:8000/subscribe/confirm/" in message.meta["text"]
    assert enrolled() == [], "a pending subscriber is enrolled in nothing"
    with db.session_scope() as s:
        assert s.scalars(select(TopicSubscription)).all() == [], "topics are joined on confirmation"
    # Enrolling a pending subscriber by hand skips them too.
    with db.session_scope() as s:
        pending = s.scalar(select(Subscriber.id))
    sequence = welcome_sequence(client, alice)
    assert client.post(f"{SEQUENCES}/{sequence}/subscribers", json={"subscriber_ids": [pending]},
                       headers=alice.headers).get_json() == {"enrolled": 0, "skipped": 1}


def test_the_confirmation_link_activates_joins_the_topics_and_fires_the_trigger_once(client, alice, ip):
    key = form_key(client, alice)
    news = topic(client, alice)
    welcome_sequence(client, alice)
    client.post(f"/subscribe/{key}", json={"email": "ada@example.com", "topics": ["newsletter"]}, **ip)
    token = token_of(confirmations()[0])
    page = client.get(f"/subscribe/confirm/{token}")
    assert page.status_code == 200 and "You are subscribed" in page.get_data(as_text=True)
    assert subscribers() == {"ada@example.com": "active"}
    with db.session_scope() as s:
        assert s.execute(select(TopicSubscription.topic_id, TopicSubscription.status)).all() == [(news["id"], "subscribed")]
    assert len(enrolled()) == 1
    assert client.get(f"/subscribe/confirm/{token}").status_code == 200
    assert len(enrolled()) == 1, "confirming again starts nothing twice"
    assert client.get(f"/subscribe/confirm/{token[:-2]}xx").status_code == 404


def test_every_address_gets_the_same_answer_whatever_it_is(client, alice, session, ip):
    key = form_key(client, alice)
    session.add_all([Subscriber(account_id=alice.account_id, email="active@example.com", status="active"),
                     Subscriber(account_id=alice.account_id, email="bounced@example.com", status="bounced")])
    session.commit()
    answers = {email: client.post(f"/subscribe/{key}", json={"email": email}, **ip)
               for email in ("new@example.com", "active@example.com", "bounced@example.com")}
    assert {(r.status_code, r.get_data()) for r in answers.values()} == {(202, answers["new@example.com"].get_data())}
    # Only the new address is written to: the active one has nothing to confirm, the bounced one gets nothing.
    assert [m.to_email for m in confirmations()] == ["new@example.com"]
    assert subscribers() == {"new@example.com": "pending", "active@example.com": "active",
                             "bounced@example.com": "bounced"}


def test_an_unsubscribed_address_is_not_reactivated_without_confirming(client, alice, session, ip):
    key = form_key(client, alice, "single")
    session.add(Subscriber(account_id=alice.account_id, email="gone@example.com", status="unsubscribed"))
    session.add(Suppression(account_id=alice.account_id, email="gone@example.com", reason="unsubscribed"))
    session.commit()
    assert client.post(f"/subscribe/{key}", json={"email": "gone@example.com"}, **ip).status_code == 202
    assert subscribers() == {"gone@example.com": "unsubscribed"}
    [message] = confirmations()
    assert client.get(f"/subscribe/confirm/{token_of(message)}").status_code == 200
    assert subscribers() == {"gone@example.com": "active"}
    with db.session_scope() as s:
        assert s.scalars(select(Suppression)).all() == [], "the reader's click lifts their own unsubscribe"


@pytest.mark.parametrize("listed_as", [None, "unsubscribed"])
def test_an_erased_address_gets_nothing_from_the_form_whatever_it_was_listed_for(client, alice, session, ip,
                                                                                   listed_as):
    key = form_key(client, alice, "double")
    person = client.post("/api/v1/subscribers", json={"email": "gone@example.com"}, headers=alice.headers).get_json()
    if listed_as:  # unsubscribed first: an unsubscribe alone could be lifted by the reader's click
        session.add(Suppression(account_id=alice.account_id, email="gone@example.com", reason=listed_as))
        session.commit()
    assert client.post(f"/api/v1/subscribers/{person['id']}/erase", headers=alice.headers).status_code == 204
    assert client.post(f"/subscribe/{key}", json={"email": "Gone@Example.com"}, **ip).status_code == 202
    assert subscribers() == {} and confirmations() == [], "no pending subscriber, no confirmation to an erased address"


def test_an_address_suppressed_for_a_bounce_or_by_hand_gets_nothing(client, alice, session, ip):
    key = form_key(client, alice, "single")
    session.add_all([Suppression(account_id=alice.account_id, email="hard@example.com", reason="bounced"),
                     Suppression(account_id=alice.account_id, email="blocked@example.com", reason="manual")])
    session.commit()
    for email in ("hard@example.com", "blocked@example.com"):
        assert client.post(f"/subscribe/{key}", json={"email": email}, **ip).status_code == 202
    assert subscribers() == {} and confirmations() == []


def test_single_opt_in_makes_a_new_address_active_at_once_in_its_topics(client, alice, ip):
    key = form_key(client, alice, "single")
    topic(client, alice)
    welcome_sequence(client, alice)
    response = client.post(f"/subscribe/{key}", data={"email": "ada@example.com", "topics": ["newsletter"]}, **ip)
    assert response.status_code == 200 and "Thank you" in response.get_data(as_text=True)
    assert subscribers() == {"ada@example.com": "active"}
    assert confirmations() == []
    assert len(enrolled()) == 1
    with db.session_scope() as s:
        assert s.scalars(select(TopicSubscription.status)).all() == ["subscribed"]


def test_a_filled_honeypot_gets_the_same_answer_and_creates_nothing(client, alice, ip):
    key = form_key(client, alice)
    real = client.post(f"/subscribe/{key}", data={"email": "ada@example.com", "website": ""}, **ip)
    bot = client.post(f"/subscribe/{key}", data={"email": "bot@example.com", "website": "http://spam.test"}, **ip)
    assert (bot.status_code, bot.get_data()) == (real.status_code, real.get_data())
    json_bot = client.post(f"/subscribe/{key}", json={"email": "bot2@example.com", "website": "x"}, **ip)
    assert json_bot.status_code == 202
    assert subscribers() == {"ada@example.com": "pending"}


def test_bad_input_names_the_field_as_json_or_as_a_page_and_writes_nothing(client, alice, ip):
    key = form_key(client, alice)
    topic(client, alice)
    bad = client.post(f"/subscribe/{key}", json={"email": "not-an-address", "topics": ["nope"]}, **ip)
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]["json"]) == {"email", "topics.0"}
    page = client.post(f"/subscribe/{key}", data={"email": "ada@example.com", "first_name": "x" * 500}, **ip)
    assert page.status_code == 422 and "first_name" in page.get_data(as_text=True)
    assert client.post(f"/subscribe/{key}", json=["a list"], **ip).status_code == 422
    assert subscribers() == {} and confirmations() == []


def test_an_unknown_form_key_is_a_404(client, alice, ip):
    form_key(client, alice)
    assert client.get("/subscribe/no-such-key").status_code == 404
    assert client.post("/subscribe/no-such-key", json={"email": "ada@example.com"}, **ip).status_code == 404


def test_posts_are_limited_per_ip(client, alice, ip):
    key = form_key(client, alice)
    codes = [client.post(f"/subscribe/{key}", json={"email": f"reader{i}@example.com"}, **ip).status_code
             for i in range(21)]
    assert codes == [202] * 20 + [429]
    other_ip = {"environ_base": {"REMOTE_ADDR": "192.0.2.77"}}
    assert client.post(f"/subscribe/{key}", json={"email": "late@example.com"}, **other_ip).status_code == 202


def test_posts_are_limited_per_address_across_ips(client, alice):
    key = form_key(client, alice)
    codes = [client.post(f"/subscribe/{key}", json={"email": "ADA@example.com" if i % 2 else "ada@example.com"},
                         environ_base={"REMOTE_ADDR": f"198.51.100.{i + 1}"}).status_code for i in range(4)]
    assert codes == [202, 202, 202, 429]
    page = client.post(f"/subscribe/{key}", data={"email": "ada@example.com"},
                       environ_base={"REMOTE_ADDR": "198.51.100.99"})
    assert page.status_code == 429 and page.mimetype == "text/html"
    assert len(confirmations()) == 3


def test_pending_subscribers_expire_and_so_do_their_links(client, alice, session, settings, ip):
    key = form_key(client, alice)
    client.post(f"/subscribe/{key}", json={"email": "late@example.com"}, **ip)
    session.add(Subscriber(account_id=alice.account_id, email="old@example.com", status="active",
                           created_at=utcnow() - timedelta(days=30)))
    session.commit()
    token = token_of(confirmations()[0])
    later = utcnow() + timedelta(hours=73)
    with pytest.raises(ConfirmationError):
        confirm(session, token, later, secret_key=settings.secret_key, max_age=timedelta(hours=72))
    assert expire_pending(session, utcnow() + timedelta(hours=71), timedelta(hours=72)) == 0
    assert expire_pending(session, later, timedelta(hours=72)) == 1
    session.commit()
    assert subscribers() == {"old@example.com": "active"}
    assert confirmations() == [], "the confirmation went with its subscriber"


def test_the_form_page_is_embeddable_plain_html_with_the_honeypot(client, alice):
    key = form_key(client, alice)
    topic(client, alice, "news", "News & <views>")
    page = client.get(f"/subscribe/{key}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert f'action="http://localhost:8000/subscribe/{key}"' in html
    assert 'name="email"' in html and 'name="first_name"' in html and 'name="website"' in html
    assert 'name="topics" value="news"' in html and "News &amp; &lt;views&gt;" in html
    assert '<label for="eseq-email">' in html
    assert "frame-ancestors *" in page.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in page.headers


def test_the_account_chooses_its_opt_in_and_sees_its_form(client, alice, bob):
    account = client.get("/api/v1/account", headers=alice.headers).get_json()
    assert account["opt_in"] == "single"
    assert account["subscribe_url"] == f"http://localhost:8000/subscribe/{account['form_key']}"
    assert len(account["form_key"]) >= 20
    assert client.get("/api/v1/account", headers=bob.headers).get_json()["form_key"] != account["form_key"]
    bad = client.patch("/api/v1/account", json={"opt_in": "triple"}, headers=alice.headers)
    assert bad.status_code == 422 and "opt_in" in bad.get_json()["errors"]["json"]
    assert client.patch("/api/v1/subscribers/1", json={"status": "pending"}, headers=alice.headers).status_code == 422


def test_a_twin_post_that_inserted_the_address_first_leaves_the_transaction_usable(client, alice, session):
    from audience.opt_in import _new_subscriber

    session.add(Subscriber(account_id=alice.account_id, email="ada@example.com", status="pending"))
    session.flush()
    assert _new_subscriber(session, alice.account_id, "ada@example.com", None, "pending", utcnow()) is None
    assert session.scalar(select(Subscriber.status).where(Subscriber.email == "ada@example.com")) == "pending"


HOSTILE = [None, 5, {}, ["x"], " ", "x" * 5000, "a\x00b@example.com", "<script>alert(1)</script>",
           "ada@example.com\r\nBcc: eve@example.com"]


def test_no_hostile_value_in_any_field_gets_a_server_error_or_writes_a_bad_row(client, alice):
    key = form_key(client, alice)
    topic(client, alice)
    n = 0
    for field in ("email", "first_name", "topics"):
        for value in HOSTILE:
            n += 1
            body = {"email": f"reader{n}@example.com", "topics": ["newsletter"], field: value}
            env = {"environ_base": {"REMOTE_ADDR": f"203.0.113.{n % 250 + 1}"}}
            as_json = client.post(f"/subscribe/{key}", json=body, **env)
            # 429: unusable addresses share one per-address count ("?"), spent after three
            assert as_json.status_code in (202, 422, 429), (field, value, as_json.get_data())
            if as_json.status_code == 422:
                assert as_json.get_json()["errors"]["json"], (field, value)
            form = {k: v for k, v in body.items() if isinstance(v, (str, list))}
            as_form = client.post(f"/subscribe/{key}", data=form, **env)
            assert as_form.status_code in (200, 422, 429), (field, value, as_form.get_data())
    for email in subscribers():
        assert "\n" not in email and "\x00" not in email and "<" not in email


def test_a_form_post_goes_to_the_accounts_own_thank_you_page_when_it_set_one(client, alice, ip):
    key = form_key(client, alice)
    for bad in ("javascript:alert(1)", "ftp://acme.test/x", "not a url"):
        refused = client.patch("/api/v1/account", json={"form_redirect_url": bad}, headers=alice.headers)
        assert refused.status_code == 422 and "form_redirect_url" in refused.get_json()["errors"]["json"]
    thanks = "https://acme.test/thanks?from=form"
    set_ = client.patch("/api/v1/account", json={"form_redirect_url": thanks}, headers=alice.headers)
    assert set_.status_code == 200 and set_.get_json()["form_redirect_url"] == thanks
    real = client.post(f"/subscribe/{key}", data={"email": "ada@example.com"}, **ip)
    bot = client.post(f"/subscribe/{key}", data={"email": "bot@example.com", "website": "x"}, **ip)
    assert [(r.status_code, r.headers["Location"]) for r in (real, bot)] == [(303, thanks)] * 2
    assert client.post(f"/subscribe/{key}", json={"email": "bea@example.com"}, **ip).status_code == 202
    assert client.patch("/api/v1/account", json={"form_redirect_url": None},
                        headers=alice.headers).get_json()["form_redirect_url"] is None
    assert client.post(f"/subscribe/{key}", data={"email": "cy@example.com"}, **ip).status_code == 200


def test_a_pending_subscriber_starts_no_triggered_sequence(client, alice, ip):
    key = form_key(client, alice)
    body = {"name": "Buyers", "steps": [{"type": "email", "subject": "Hi", "text": "Hello"}],
            "settings": {"trigger": {"type": "event", "event": "purchase"}}}
    sequence = client.post(SEQUENCES, json=body, headers=alice.headers).get_json()
    assert client.post(f"{SEQUENCES}/{sequence['id']}/activate", headers=alice.headers).status_code == 200
    client.post(f"/subscribe/{key}", json={"email": "ada@example.com"}, **ip)
    event = client.post("/api/v1/events", json={"email": "ada@example.com", "name": "purchase"}, headers=alice.headers)
    assert event.status_code in (200, 201, 202), event.get_json()
    assert enrolled() == []
    token = token_of(confirmations()[0])
    assert client.get(f"/subscribe/confirm/{token}").status_code == 200
    client.post("/api/v1/events", json={"email": "ada@example.com", "name": "purchase"}, headers=alice.headers)
    assert len(enrolled()) == 1, "once confirmed, the same event starts it"
