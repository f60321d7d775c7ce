"""The unsubscribe page as a preference page: the reader's topics, each leavable,
and "everything"; a GET changes nothing; one-click still unsubscribes from all."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from delivery.tracking import Tracker
from models import Enrollment, Message, Subscriber, Suppression, Topic, TopicSubscription, db, utcnow
from tests.support import factories

BASE = "https://mail.example.test"


def _reader(account_id: int, topics: dict[str, str], email: str = "ada@example.test") -> tuple[int, int, dict[str, int]]:
    """(subscriber, message, topic ids by key): an active reader in ``topics``
    (key -> name) with a sent email and a running enrollment."""
    now = utcnow()
    with db.session_scope() as s:
        subscriber = Subscriber(account_id=account_id, email=email, status="active")
        rows = {key: Topic(account_id=account_id, key=key, name=name) for key, name in topics.items()}
        s.add_all([subscriber, *rows.values()])
        s.flush()
        s.add_all([TopicSubscription(account_id=account_id, topic_id=t.id, subscriber_id=subscriber.id)
                   for t in rows.values()])
        message = Message(account_id=account_id, subscriber_id=subscriber.id, idempotency_key=f"k:{email}",
                          to_email=email, status="sent")
        s.add(message)
        s.flush()
        ids = (subscriber.id, message.id, {key: t.id for key, t in rows.items()})
    sequence = factories.sequence(account_id, [{"type": "email", "subject": "a", "text": "b"}])
    factories.enroll(account_id, sequence, [ids[0]], now + timedelta(days=1))
    return ids


def _url(settings, account_id: int, message_id: int) -> str:
    return Tracker(settings.secret_key, BASE).unsubscribe_url(account_id, message_id).removeprefix(BASE)


def _memberships(subscriber_id: int) -> dict[str, str]:
    with db.session_scope() as s:
        return dict(s.execute(select(Topic.key, TopicSubscription.status).join(
            TopicSubscription, TopicSubscription.topic_id == Topic.id).where(
            TopicSubscription.subscriber_id == subscriber_id)).all())


def _state(subscriber_id: int) -> tuple[str, int, list[str]]:
    with db.session_scope() as s:
        return (s.scalar(select(Subscriber.status).where(Subscriber.id == subscriber_id)),
                len(s.scalars(select(Suppression)).all()),
                list(s.scalars(select(Enrollment.status).where(Enrollment.subscriber_id == subscriber_id))))


def test_the_page_lists_the_readers_topics_escaped_and_a_get_changes_nothing(client, alice, settings):
    subscriber, message, _ = _reader(alice.account_id, {"news": "News <b>weekly</b>", "product": "Product updates"})
    page = client.get(_url(settings, alice.account_id, message))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "News &lt;b&gt;weekly&lt;/b&gt;" in html and "<b>weekly" not in html
    assert "Product updates" in html and "Unsubscribe from everything" in html
    assert html.count('<form method="post">') == 2 and 'name="leave"' in html
    assert _state(subscriber) == ("active", 0, ["active"])
    assert _memberships(subscriber) == {"news": "subscribed", "product": "subscribed"}


def test_leaving_one_topic_keeps_the_others_and_everything_else(client, alice, settings):
    subscriber, message, topics = _reader(alice.account_id, {"news": "News", "product": "Product updates"})
    url = _url(settings, alice.account_id, message)
    response = client.post(url, data={"leave": str(topics["news"])})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "You left News." in html
    assert "Product updates" in html and 'name="leave" value="%d"' % topics["news"] not in html
    assert _memberships(subscriber) == {"news": "left", "product": "subscribed"}
    assert _state(subscriber) == ("active", 0, ["active"])


def test_a_leave_naming_a_topic_the_reader_is_not_in_changes_nothing(client, alice, settings):
    subscriber, message, _ = _reader(alice.account_id, {"news": "News"})
    _other, _, others = _reader(alice.account_id, {"vip": "VIP"}, email="bea@example.test")
    response = client.post(_url(settings, alice.account_id, message), data={"leave": str(others["vip"])})
    assert response.status_code == 200 and "nothing changed" in response.get_data(as_text=True)
    assert _memberships(_other) == {"vip": "subscribed"}
    for junk in ("x" * 40, "²", "-1", "9" * 40, ""):
        assert client.post(_url(settings, alice.account_id, message), data={"leave": junk}).status_code == 200
    assert _state(subscriber) == ("active", 0, ["active"])


def test_everything_unsubscribes_suppresses_and_ends_enrollments(client, alice, settings):
    subscriber, message, _ = _reader(alice.account_id, {"news": "News"})
    response = client.post(_url(settings, alice.account_id, message), data={"everything": "1"})
    assert response.status_code == 200 and "You are unsubscribed" in response.get_data(as_text=True)
    assert _state(subscriber) == ("unsubscribed", 1, ["exited"])


def test_one_click_still_unsubscribes_from_everything_in_one_post(client, alice, settings):
    subscriber, message, _ = _reader(alice.account_id, {"news": "News", "product": "Product"})
    response = client.post(_url(settings, alice.account_id, message), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and response.get_data() == b""
    assert _state(subscriber) == ("unsubscribed", 1, ["exited"])


def test_a_token_that_is_not_ours_is_a_404_and_changes_nothing(client, alice, settings):
    subscriber, message, topics = _reader(alice.account_id, {"news": "News"})
    forged = Tracker("another-secret-0123456789", BASE).unsubscribe_url(alice.account_id, message).removeprefix(BASE)
    assert client.get(forged).status_code == 404
    assert client.post(forged, data={"leave": str(topics["news"])}).status_code == 404
    assert _memberships(subscriber) == {"news": "subscribed"}
