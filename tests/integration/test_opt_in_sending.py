"""The send path's content for double opt-in confirmations, and topic sequences'
send-time check, on PostgreSQL with a real SMTP server on loopback."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from audience.opt_in import confirm, expire_pending, submit
from audience.topics import join, leave, members_of
from models import Account, Message, Subscriber, Topic, TopicSubscription, db
from models.base import utcnow
from settings import get_settings
from tests.support import factories
from tests.support.database import embedded_sqlite, migrate
from tests.support.engine import run_due
from tests.support.sending import send_in_process


def _parts(email) -> dict[str, str]:
    return {p.get_content_type(): p.get_payload(decode=True).decode() for p in email.walk() if not p.is_multipart()}


def _confirmation(email: str = "ada@example.test") -> int:
    """A double opt-in account's form post for ``email``: the queued confirmation's id."""
    acct = factories.account()
    with db.session_scope() as s:
        s.execute(update(Account).where(Account.id == acct).values(opt_in="double", postal_address="1 Main St"))
        account = s.get(Account, acct)
        done = submit(s, account, {"email": email}, utcnow(), secret_key=get_settings().secret_key,
                      base_url="https://lists.example.test")
        return done.confirmation_id


def _row(message_id: int) -> Message:
    with db.session_scope() as s:
        row = s.get(Message, message_id)
        s.expunge(row)
        return row


def test_a_confirmation_arrives_untracked_without_a_footer_with_its_signed_link(smtp):
    message_id = _confirmation()
    assert send_in_process([message_id]) == {"sent": 1}
    [email] = smtp.handler.to("ada@example.test")
    body = _parts(email)
    assert email["Subject"] == "Please confirm your subscription to Alice"
    assert email["From"] == "Alice <alice@sender.test>"
    link = "https://lists.example.test/subscribe/confirm/"
    assert link in body["text/plain"] and f'href="{link}' in body["text/html"]
    assert "/t/c/" not in body["text/html"] and "/t/o/" not in body["text/html"], "no click or open tracking"
    assert "1 Main St" not in body["text/plain"], "no marketing footer: the reader is on no list yet"
    assert email["List-Unsubscribe"] and "/u/" in email["List-Unsubscribe"]
    assert _row(message_id).status == "sent"
    assert _row(message_id).meta["kind"] == "opt_in_confirmation"


def test_a_confirmation_to_an_address_that_bounced_since_is_suppressed_not_sent(smtp):
    message_id = _confirmation()
    with db.session_scope() as s:
        s.execute(update(Subscriber).values(status="bounced"))
    assert send_in_process([message_id]) == {}  # settled in prepare: nothing went to a provider
    assert smtp.handler.received == []
    assert (_row(message_id).status, _row(message_id).error) == ("suppressed", "subscriber bounced")


def test_a_topic_sequences_email_to_someone_who_left_the_topic_since_is_suppressed(smtp):
    acct = factories.account()
    now = utcnow()
    readers = factories.subscribers(acct, 2)
    with db.session_scope() as s:
        news = Topic(account_id=acct, key="news", name="News")
        s.add(news)
        s.flush()
        join(s, acct, readers, [news.id], now, rejoin=False)
        topic_id = news.id
    sequence = factories.sequence(acct, [{"type": "email", "subject": "News", "text": "this week"}],
                                  settings={"topic": "news"})
    factories.enroll(acct, sequence, readers, now)
    message_ids = run_due(now)
    with db.session_scope() as s:
        leave(s, acct, readers[1], [topic_id], now)  # after the email was queued, before it went
    assert len(message_ids) == 2
    assert send_in_process(message_ids) == {"sent": 1}
    assert len(smtp.handler.to("user0@example.test")) == 1 and smtp.handler.to("user1@example.test") == []
    with db.session_scope() as s:
        left = s.scalar(select(Message).where(Message.subscriber_id == readers[1]))
        assert (left.status, left.error) == ("suppressed", "subscriber not in the topic 'news'")


def test_on_the_embedded_sqlite_default_a_form_post_is_sent_confirmed_and_expired(tmp_path, smtp):
    """The same path on SQLite (`make run`): the pending row and its confirmation, the
    send, the click (topics joined), and expiry of another unconfirmed address."""
    with embedded_sqlite(tmp_path):
        acct = factories.account()
        secret = get_settings().secret_key
        with db.session_scope() as s:
            s.execute(update(Account).where(Account.id == acct).values(opt_in="double"))
            s.add(Topic(account_id=acct, key="news", name="News"))
            s.flush()
            account = s.get(Account, acct)
            first = submit(s, account, {"email": "ada@example.test", "topics": ["news"]}, utcnow(), secret_key=secret,
                           base_url="http://localhost:8000").confirmation_id
            submit(s, account, {"email": "late@example.test"}, utcnow() - timedelta(hours=80), secret_key=secret,
                   base_url="http://localhost:8000")
        assert send_in_process([first]) == {"sent": 1}
        text = _parts(smtp.handler.to("ada@example.test")[0])["text/plain"]
        token = text.split("/subscribe/confirm/", 1)[1].split()[0]
        with db.session_scope() as s:
            subscriber, was_pending = confirm(s, token, utcnow(), secret_key=secret, max_age=timedelta(hours=72))
            assert (subscriber.status, was_pending) == ("active", True)
        with db.session_scope() as s:
            assert expire_pending(s, utcnow(), timedelta(hours=72)) == 1
        with db.session_scope() as s:
            assert dict(s.execute(select(Subscriber.email, Subscriber.status)).all()) == {"ada@example.test": "active"}
            assert s.scalars(select(TopicSubscription.status)).all() == ["subscribed"]
            ada = s.scalar(select(Subscriber.id))
            assert members_of(s, acct, "news", [ada, ada + 1]) == {ada}, "the send path's topic check on SQLite"


def test_beat_runs_the_expiry_task_which_removes_only_stale_pending_subscribers():
    from schedules.beat import beat_schedule
    from tasks.app import app
    from tasks.audience import expire_pending_subscribers

    entry = beat_schedule(5.0)["audience-expire-pending"]
    assert entry["task"] in app.tasks and entry["options"]["queue"] == "default"
    acct = factories.account()
    hours = get_settings().opt_in_expiry_hours
    with db.session_scope() as s:
        s.add_all([Subscriber(account_id=acct, email="stale@example.test", status="pending",
                              created_at=utcnow() - timedelta(hours=hours + 1)),
                   Subscriber(account_id=acct, email="fresh@example.test", status="pending",
                              created_at=utcnow() - timedelta(hours=hours - 1)),
                   Subscriber(account_id=acct, email="old@example.test", status="active",
                              created_at=utcnow() - timedelta(days=365))])
    assert expire_pending_subscribers() == 1
    with db.session_scope() as s:
        assert sorted(s.scalars(select(Subscriber.email))) == ["fresh@example.test", "old@example.test"]


def test_migrating_gives_each_existing_account_its_own_form_key_and_single_opt_in(tmp_path):
    with embedded_sqlite(tmp_path, "0030") as url:
        first, second = factories.account_row(utcnow(), "First"), factories.account_row(utcnow(), "Second")
        migrate(url)
        with db.session_scope() as s:
            rows = {a.id: (a.opt_in, a.form_key) for a in s.scalars(select(Account))}
    assert rows[first][0] == rows[second][0] == "single"
    assert len(rows[first][1]) >= 20 and rows[first][1] != rows[second][1]
