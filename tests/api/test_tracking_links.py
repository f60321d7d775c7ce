"""What tracking and unsubscribe links act on: the message of the account they
name, never another's; an erased subscriber's old link answers success and changes
nothing; links signed before links named the account act only where ids were
never reused (PostgreSQL)."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from delivery.tracking import Tracker
from models import Event, Message, Subscriber, Suppression, db
from tests.support import factories
from tests.support.database import embedded_sqlite

BASE = "https://mail.example.test"


def _message(account_id: int, email: str) -> tuple[int, int]:
    """(subscriber id, message id) of a sent email to ``email``."""
    with db.session_scope() as s:
        subscriber = Subscriber(account_id=account_id, email=email, status="active")
        s.add(subscriber)
        s.flush()
        message = Message(account_id=account_id, subscriber_id=subscriber.id, idempotency_key=f"k:{email}",
                          to_email=email, status="sent")
        s.add(message)
        s.flush()
        return subscriber.id, message.id


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1].removesuffix(".gif")


def _counts() -> tuple[int, int]:
    with db.session_scope() as s:
        return s.scalar(select(func.count()).select_from(Suppression)), s.scalar(select(func.count()).select_from(Event))


def test_an_erased_subscribers_old_unsubscribe_link_answers_success_and_changes_nothing(client, alice, settings):
    subscriber, message = _message(alice.account_id, "ada@example.test")
    token = _token(Tracker(settings.secret_key, BASE).unsubscribe_url(alice.account_id, message))
    assert client.delete(f"/api/v1/subscribers/{subscriber}", headers=alice.headers).status_code == 204
    page = client.get(f"/u/{token}")
    assert page.status_code == 200 and "You are unsubscribed" in page.get_data(as_text=True)
    done = client.post(f"/u/{token}")
    assert done.status_code == 200 and "You are unsubscribed" in done.get_data(as_text=True)
    assert client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert _counts() == (0, 0), "no suppression or event written for someone erased"
    with db.session_scope() as s:
        assert s.scalars(select(Subscriber)).all() == []


def test_a_link_naming_another_account_than_its_messages_acts_on_nothing(client, alice, bob, settings):
    # What an old link becomes where its message id was handed to another account's message.
    subscriber, message = _message(alice.account_id, "ada@example.test")
    tracker = Tracker(settings.secret_key, BASE)
    assert client.post(f"/u/{_token(tracker.unsubscribe_url(bob.account_id, message))}").status_code == 200
    assert client.get(f"/t/o/{_token(tracker.open_url(bob.account_id, message))}.gif").status_code == 200
    click = client.get(f"/t/c/{_token(tracker.click_url(bob.account_id, message, 'https://shop.test/'))}")
    assert (click.status_code, click.headers["Location"]) == (302, "https://shop.test/")
    assert _counts() == (0, 0)
    with db.session_scope() as s:
        assert s.get(Subscriber, subscriber).status == "active"


def test_links_naming_their_account_act_on_its_message(client, alice, settings):
    subscriber, message = _message(alice.account_id, "ada@example.test")
    tracker = Tracker(settings.secret_key, BASE)
    client.get(f"/t/o/{_token(tracker.open_url(alice.account_id, message))}.gif")
    client.get(f"/t/c/{_token(tracker.click_url(alice.account_id, message, 'https://shop.test/'))}")
    assert client.post(f"/u/{_token(tracker.unsubscribe_url(alice.account_id, message))}").status_code == 200
    with db.session_scope() as s:
        assert s.get(Subscriber, subscriber).status == "unsubscribed"
        assert sorted(s.scalars(select(Event.name).where(Event.message_id == message))) == [
            "clicked", "opened", "unsubscribed"]


def test_a_link_signed_before_links_named_the_account_still_acts_on_postgresql(client, alice, settings):
    """PostgreSQL's sequences never handed an id out twice: the id alone was safe."""
    subscriber, message = _message(alice.account_id, "ada@example.test")
    tracker = Tracker(settings.secret_key, BASE)
    client.get(f"/t/o/{tracker.sign('open', message)}.gif")
    assert client.post(f"/u/{tracker.sign('unsubscribe', message)}").status_code == 200
    with db.session_scope() as s:
        assert s.get(Subscriber, subscriber).status == "unsubscribed"
        assert sorted(s.scalars(select(Event.name))) == ["opened", "unsubscribed"]


def test_on_sqlite_a_deleted_messages_id_is_not_reused_and_its_old_link_leaves_the_next_tenant_alone(
        client, settings, tmp_path: Path):
    with embedded_sqlite(tmp_path):
        tracker = Tracker(settings.secret_key, BASE)
        a, b = factories.account("Alice"), factories.account("Bob")
        a_subscriber, a_message = _message(a, "ada@example.test")
        a_link = _token(tracker.unsubscribe_url(a, a_message))
        with db.session_scope() as s:  # A erases their subscriber (messages go with it)
            s.delete(s.get(Subscriber, a_subscriber))
        b_subscriber, b_message = _message(b, "bea@example.test")
        assert b_message > a_message and b_subscriber > a_subscriber, "ids handed out again"
        assert client.post(f"/u/{a_link}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
        # A link from before links named the account cannot be told apart from one
        # whose id was reused: on SQLite it acts on nothing.
        assert client.post(f"/u/{tracker.sign('unsubscribe', b_message)}").status_code == 404
        client.get(f"/t/o/{tracker.sign('open', b_message)}.gif")
        with db.session_scope() as s:
            assert s.get(Subscriber, b_subscriber).status == "active"
            assert s.scalars(select(Suppression)).all() == [] and s.scalars(select(Event)).all() == []
        assert client.post(f"/u/{_token(tracker.unsubscribe_url(b, b_message))}").status_code == 200
        with db.session_scope() as s:
            assert s.get(Subscriber, b_subscriber).status == "unsubscribed"
