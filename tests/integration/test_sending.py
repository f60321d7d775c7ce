"""The send path on real parts: a Celery worker on real Redis, real PostgreSQL, and
a real SMTP server on loopback (aiosmtpd)."""
from __future__ import annotations

import re
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import OperationalError

import delivery.batch
from delivery.batch import send_batch
from delivery.errors import PermanentDeliveryError, TransientDeliveryError
from delivery.outbox import SEND_LEASE, claim_for_dispatch, claim_for_send
from delivery.sender import Outcome, record
from delivery.tracking import Tracker
from models import Enrollment, Event, Message, Subscriber, Suppression, db
from models.base import utcnow
from sequencing.claims import claim_due_enrollments
from settings import get_settings
from tasks.sending import RECORDER
from tasks.sequencing import enqueue_sends
from tests.support.sending import LINK, STEP, forget_smtp, queue_emails, send_in_process, statuses, use_smtp
from tests.support.smtp import RecordingHandler, SmtpServer, free_port
from tests.conftest import PG_ADMIN_URL
from tests.support.waiting import wait_for

def test_it_sends_every_queued_message_exactly_once_through_a_worker(smtp, worker):
    ids = queue_emails(40)
    enqueue_sends(ids)
    enqueue_sends(ids)  # a duplicate dispatch must not send twice
    wait_for(lambda: statuses() == {"sent": 40})
    time.sleep(0.5)
    recipients = [r for got in smtp.handler.received for r in got.recipients]
    assert sorted(recipients) == sorted(f"user{i}@example.test" for i in range(40))
    with db.session_scope() as s:
        for m in s.scalars(select(Message)):
            assert m.provider == "smtp" and m.attempts == 1 and m.sent_at is not None
            assert m.provider_message_id and m.provider_message_id.startswith("<")


def test_the_email_is_multipart_personalised_tracked_and_carries_one_click_unsubscribe(smtp):
    [message_id] = queue_emails(1)
    assert send_in_process([message_id]) == {"sent": 1}
    [email] = smtp.handler.to("user0@example.test")
    assert email["Subject"] == "Hi User0"
    assert email["From"] == "Alice <alice@sender.test>"
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "mailto:" in email["List-Unsubscribe"] and "/u/" in email["List-Unsubscribe"]
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in email.walk() if not p.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}
    assert "Hello User0" in parts["text/plain"]
    html = parts["text/html"]
    assert LINK not in html, "links must go through the signed click redirect"
    assert re.search(r'href="http://localhost:8000/t/c/[^"]+"', html)
    assert re.search(r'<img src="http://localhost:8000/t/o/[^"]+\.gif"', html)


def test_opens_and_clicks_are_recorded_once_and_the_redirect_goes_only_where_signed(smtp, client):
    [message_id] = queue_emails(1)
    send_in_process([message_id])
    [email] = smtp.handler.to("user0@example.test")
    html = next(p.get_payload(decode=True).decode() for p in email.walk() if p.get_content_type() == "text/html")
    pixel = urlsplit(re.search(r'<img src="([^"]+)"', html).group(1)).path
    click = urlsplit(re.search(r'href="(http://localhost:8000/t/c/[^"]+)"', html).group(1)).path

    assert client.get(pixel).status_code == 200
    assert client.get(pixel).status_code == 200
    response = client.get(click)
    assert response.status_code == 302 and response.headers["Location"] == LINK
    client.get(click)
    assert client.get(click[:-3] + "abc").status_code == 404
    assert client.get(pixel.replace(".gif", "x.gif")).status_code == 404
    with db.session_scope() as s:
        names = sorted(s.scalars(select(Event.name).where(Event.message_id == message_id)))
    assert names == ["clicked", "opened", "sent"]


def test_a_one_click_unsubscribe_stops_every_later_email(smtp, client):
    steps = [STEP, {"type": "delay", "seconds": 1}, {"type": "email", "subject": "later", "text": "x"}]
    [message_id] = queue_emails(1, steps)
    send_in_process([message_id])
    [email] = smtp.handler.to("user0@example.test")
    one_click = re.search(r"<(http://localhost:8000/u/[^>]+)>", email["List-Unsubscribe"]).group(1)
    path = urlsplit(one_click).path
    assert client.get(path).status_code == 200  # GET shows a page and changes nothing
    assert client.head(path).status_code == 200  # nor does HEAD, which link scanners probe with
    assert client.get(path[:-3] + "abc").status_code == 404  # a tampered token
    with db.session_scope() as s:
        assert s.scalar(select(Subscriber.status)) == "active"
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with db.session_scope() as s:
        assert s.scalar(select(Subscriber.status)) == "unsubscribed"
        assert s.scalar(select(Suppression.reason)) == "unsubscribed"
        assert s.scalar(select(Enrollment.status)) == "exited"
    later = utcnow() + timedelta(seconds=5)
    with db.session_scope() as s:
        assert claim_due_enrollments(s, later, 100) == []


def test_a_suppressed_address_is_not_sent_to_even_if_already_queued(smtp):
    ids = queue_emails(2)
    with db.session_scope() as s:
        acct = s.scalar(select(Message.account_id))
        s.add(Suppression(account_id=acct, email="user1@example.test", reason="manual"))
    assert send_in_process(ids) == {"sent": 1}
    assert statuses() == {"sent": 1, "suppressed": 1}
    assert smtp.handler.to("user1@example.test") == []


def test_a_refused_mailbox_fails_once_and_suppresses_the_address(smtp):
    smtp.handler.refuse["user0@example.test"] = "550 5.1.1 No such user"
    ids = queue_emails(2)
    assert send_in_process(ids) == {"failed": 1, "sent": 1}
    with db.session_scope() as s:
        failed = s.scalar(select(Message).where(Message.status == "failed"))
        assert failed.to_email == "user0@example.test" and "550" in failed.error and failed.attempts == 1
        assert s.scalar(select(Suppression.reason).where(Suppression.email == "user0@example.test")) == "bounced"
        assert s.scalar(select(Subscriber.status).where(Subscriber.email == "user0@example.test")) == "bounced"


def test_when_smtp_is_down_messages_are_deferred_then_sent_once_when_it_returns():
    port = free_port()
    use_smtp(port)
    try:
        ids = queue_emails(5)
        start = utcnow()
        assert send_in_process(ids, at=start) == {"deferred": 5}
        with db.session_scope() as s:
            for m in s.scalars(select(Message)):
                assert m.retry_at > start and "connect" in m.error
        assert send_in_process(ids, at=start) == {}, "not before retry_at"
        with SmtpServer(port) as server:
            assert send_in_process(ids, at=start + timedelta(hours=1)) == {"sent": 5}
            assert send_in_process(ids, at=start + timedelta(hours=2)) == {}
            assert len(server.handler.received) == 5
        with db.session_scope() as s:
            assert set(s.scalars(select(Message.attempts))) == {2}
    finally:
        forget_smtp()


def test_an_outage_of_a_day_defers_messages_many_times_and_fails_none():
    """Before, the eighth transient failure failed a message: about an hour into an
    outage of the only relay, everything queued behind it was dropped."""
    port = free_port()
    use_smtp(port)
    try:
        ids = queue_emails(2)
        start = at = utcnow()
        for _ in range(12):  # backoff doubles from 30 s to its 6 h cap: about a day in all
            assert send_in_process(ids, at=at) == {"deferred": 2}
            with db.session_scope() as s:
                at = max(s.scalars(select(Message.retry_at))) + timedelta(seconds=1)
        assert timedelta(hours=16) < at - start < timedelta(hours=get_settings().retry_hours)
        with SmtpServer(port) as server:
            assert send_in_process(ids, at=at) == {"sent": 2}
            assert len(server.handler.received) == 2
        with db.session_scope() as s:
            assert {(m.status, m.attempts) for m in s.scalars(select(Message))} == {("sent", 13)}
            deferrals = [(e.message_id, e.name, e.source) for e in s.scalars(select(Event).where(Event.name == "deferred"))]
            assert sorted(deferrals) == sorted([(i, "deferred", "platform") for i in ids] * 12)
    finally:
        forget_smtp()


def test_a_message_deferred_for_longer_than_the_retry_window_expires_with_its_last_error():
    port = free_port()
    use_smtp(port)
    try:
        early, late = queue_emails(2)
        start = utcnow()
        window = timedelta(hours=get_settings().retry_hours)
        assert send_in_process([early], at=start) == {"deferred": 1}
        assert send_in_process([late], at=start + window - timedelta(hours=1)) == {"deferred": 1}
        # the window runs from each message's first failure, not from its last try
        assert send_in_process([early, late], at=start + window) == {"deferred": 1}
        with db.session_scope() as s:
            expired, waiting = s.get(Message, early), s.get(Message, late)
            assert expired.status == "failed" and expired.error.startswith(
                f"expired: no provider took it within {get_settings().retry_hours} hours of its first failed try")
            assert "connect" in expired.error.split("the last error:")[1]
            assert waiting.status == "deferred" and waiting.attempts == 2
    finally:
        forget_smtp()


def test_a_message_whose_worker_died_is_sent_again_after_its_lease(smtp):
    [message_id] = queue_emails(1)
    start = utcnow()
    with db.session_scope() as s:
        assert [r.id for r in claim_for_send(s, [message_id], start, timedelta(seconds=3))] == [message_id]
    # the worker dies here: the row stays "sending" with a lease
    with db.session_scope() as s:
        assert claim_for_dispatch(s, start + timedelta(seconds=1), 100, timedelta(seconds=3)) == []
    with db.session_scope() as s:
        assert claim_for_dispatch(s, start + timedelta(seconds=4), 100, timedelta(seconds=3)) == [message_id]
    assert send_in_process([message_id], at=start + timedelta(seconds=5)) == {"sent": 1}
    with db.session_scope() as s:
        assert s.get(Message, message_id).attempts == 2


def test_recording_a_group_of_sends_writes_only_the_rows_still_being_sent():
    """One statement records a whole group; a row some other outcome settled first
    (here: failed by another worker after a lease ran out) keeps that outcome."""
    from delivery.outbox import Accepted, mark_failed, mark_sent

    first, second, third = queue_emails(3)
    now = utcnow()
    with db.session_scope() as s:
        claim_for_send(s, [first, second], now)
    with db.session_scope() as s:
        mark_failed(s, second, "settled elsewhere", now)
    with db.session_scope() as s:
        owners = {m.id: (m.account_id, m.subscriber_id) for m in s.scalars(select(Message))}
    with db.session_scope() as s:
        mark_sent(s, [Accepted(i, *owners[i], "smtp", f"id-{n}", now) for n, i in enumerate((first, second, third))])
    with db.session_scope() as s:
        rows = {m.id: (m.status, m.provider_message_id) for m in s.scalars(select(Message))}
        events = [(e.message_id, e.name) for e in s.scalars(select(Event))]
    assert rows == {first: ("sent", "id-0"), second: ("failed", None), third: ("queued", None)}
    assert events == [(first, "sent")]


def test_a_replayed_or_reconciled_send_adds_no_second_sent_event():
    """A record tried again after a commit whose answer was lost, and a provider's
    event reconciling a send already recorded, find the row ``sent`` and write no
    event: one ``sent`` a message, with no dedup key (no event_keys row for it)."""
    from delivery.outbox import Accepted, mark_sent, reconcile_sent

    first, second = queue_emails(2)
    now = utcnow()
    with db.session_scope() as s:
        claim_for_send(s, [first, second], now)
    with db.session_scope() as s:
        accepted = [Accepted(m.id, m.account_id, m.subscriber_id, "smtp", f"id-{m.id}", now)
                    for m in s.scalars(select(Message).order_by(Message.id))]
    for _ in range(2):
        with db.session_scope() as s:
            recorded = mark_sent(s, accepted)
    assert recorded == set()  # the second time, nothing was left to record
    with db.session_scope() as s:
        assert not reconcile_sent(s, first, "smtp", "id-again", now, now)
    with db.session_scope() as s:
        events = sorted((e.message_id, e.name, e.dedup_key) for e in s.scalars(select(Event)))
        keys = s.scalar(text("SELECT count(*) FROM event_keys"))
    assert events == [(first, "sent", None), (second, "sent", None)]
    assert keys == 0


def test_a_message_that_kills_its_worker_every_time_fails_after_bounded_attempts_and_its_batch_goes_on(smtp):
    from delivery.outbox import MAX_CRASHES

    poison, *others = queue_emails(3)
    lease = timedelta(seconds=3)
    at = utcnow()
    for _ in range(MAX_CRASHES):  # each try: claimed, then the worker dies before any outcome
        with db.session_scope() as s:
            assert [r.id for r in claim_for_send(s, [poison], at, lease)] == [poison]
        at += lease + timedelta(seconds=1)
        with db.session_scope() as s:
            assert poison in claim_for_dispatch(s, at, 100, lease)
        at += lease + timedelta(seconds=1)
    assert send_in_process([poison, *others], at=at) == {"sent": 2}
    with db.session_scope() as s:
        failed = s.get(Message, poison)
        assert failed.status == "failed" and failed.error == f"abandoned: its worker died {MAX_CRASHES} times sending it"
        assert failed.attempts == MAX_CRASHES + 1 and failed.crashes == MAX_CRASHES
    assert smtp.handler.to("user0@example.test") == []
    assert len(smtp.handler.received) == 2


def test_an_email_that_cannot_be_built_fails_alone_and_the_rest_of_its_batch_goes_out(smtp):
    # The template is valid, but what it renders (a lone surrogate) cannot be
    # encoded: before, that error rolled back the batch's claim, and the sweep
    # handed the same batch out again and again with no attempt counted.
    good = queue_emails(2)
    [bad] = queue_emails(1, [{**STEP, "html": '<p>{{ "\\ud800" }}</p>'}])
    assert send_in_process(good + [bad]) == {"sent": 2}
    with db.session_scope() as s:
        failed = s.get(Message, bad)
        assert failed.status == "failed" and "cannot build this email" in failed.error
    assert len(smtp.handler.received) == 2


def test_an_outcome_recorded_after_its_claim_was_superseded_changes_nothing(smtp):
    # Worker A's lease ran out mid-send, the sweep gave the row to worker B:
    # whatever A reports late must not land on B's claim (nor suppress anyone).

    ids = queue_emails(3)
    start = utcnow()
    with db.session_scope() as s:
        claim_for_send(s, ids, start)
    later = start + SEND_LEASE + timedelta(seconds=1)
    with db.session_scope() as s:
        assert sorted(claim_for_dispatch(s, later, 100)) == sorted(ids)
        claim_for_send(s, ids, later)  # worker B
    a_claim = start + SEND_LEASE
    with db.session_scope() as s:
        owners = {m.id: (m.account_id, m.subscriber_id, m.attempts) for m in s.scalars(select(Message))}
    late = [Outcome(ids[0], *owners[ids[0]], "smtp", provider_message_id="<a@x>", at=later, claim=a_claim),
            Outcome(ids[1], *owners[ids[1]], "smtp", error=TransientDeliveryError("451 later"), at=later, claim=a_claim),
            Outcome(ids[2], *owners[ids[2]], "smtp", error=PermanentDeliveryError("550 5.1.1 gone"), at=later,
                    claim=a_claim)]
    with db.session_scope() as s:
        assert record(s, late) == ["superseded"] * 3
    with db.session_scope() as s:
        rows = {m.id: (m.status, m.claimed_until) for m in s.scalars(select(Message))}
        assert rows == {i: ("sending", later + SEND_LEASE) for i in ids}, "B's claim stands"
        assert s.scalars(select(Suppression)).all() == []
        assert s.scalars(select(Event).where(Event.name != "queued")).all() == []
    assert smtp.handler.received == []


def test_a_message_whose_claim_would_run_out_mid_send_is_put_back_untried(smtp):
    # Less of the lease is left than sending could take (the SMTP timeout, twice,
    # plus the rate limiter's wait): another worker could be handed it mid-send.

    [message_id] = queue_emails(1)
    start = utcnow()
    moments = iter([start])  # prepare claims at the start; the batch then runs late

    def clock():
        return next(moments, start + SEND_LEASE - timedelta(seconds=30))

    assert send_batch([message_id], get_settings(), RECORDER.start, clock=clock) == {"held": 1}
    assert smtp.handler.received == []
    with db.session_scope() as s:
        held = s.get(Message, message_id)
        assert (held.status, held.attempts, held.in_doubt_since) == ("deferred", 0, None)
    assert send_in_process([message_id], at=held.retry_at) == {"sent": 1}


def test_a_database_blip_while_recording_is_tried_again_and_nothing_is_sent_twice(smtp, monkeypatch):
    # The first try to record the group fails as a dropped connection does; the
    # retry records it (before, the batch stopped there, and after the lease the
    # accepted messages would have been sent again).
    ids = queue_emails(3)
    real = delivery.batch.record
    blips = iter([OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))])

    def flaky(session, outcomes):
        blip = next(blips, None)
        if blip is not None:
            raise blip
        return real(session, outcomes)

    monkeypatch.setattr(delivery.batch, "record", flaky)
    assert send_in_process(ids) == {"sent": 3}
    assert statuses() == {"sent": 3}
    assert sorted(r for got in smtp.handler.received for r in got.recipients) == [f"user{i}@example.test" for i in range(3)]


def test_a_recording_connection_the_server_dropped_is_replaced_and_nothing_is_lost(smtp):
    # The usual group (every message taken at once) is written on a connection
    # that is not pinged when taken from its pool: PostgreSQL ending it between
    # two groups must cost one failed try, not the records.
    ids = queue_emails(4)
    assert send_in_process(ids[:2]) == {"sent": 2}
    with db.get_engine().connect() as conn:
        ended = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    assert ended, "the recording connection was open, and is gone now"
    assert send_in_process(ids[2:]) == {"sent": 2}
    assert statuses() == {"sent": 4}
    with db.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Event).where(Event.name == "sent")) == 4


@pytest.mark.parametrize("overlap, unrecorded_at_most", [("true", 1), ("false", 0)])
def test_while_an_email_goes_out_at_most_one_accepted_before_it_is_unrecorded(overlap, unrecorded_at_most,
                                                                              monkeypatch):
    # The duplicate window, measured where it is: each time the SMTP server has
    # a whole email, how many it accepted earlier are not yet recorded as sent.
    unrecorded: list[int] = []

    class Watching(RecordingHandler):
        async def handle_DATA(self, server, session, envelope):
            with db.session_scope() as s:
                recorded = s.scalar(select(func.count()).select_from(Message).where(Message.status == "sent"))
            unrecorded.append(len(self.received) - recorded)
            return await super().handle_DATA(server, session, envelope)

    monkeypatch.setenv("ESEQ_SEND_WHILE_RECORDING", overlap)
    port = free_port()
    controller = Controller(Watching(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        use_smtp(port)
        ids = queue_emails(12)
        assert send_in_process(ids) == {"sent": 12}
    finally:
        controller.stop()
        forget_smtp()
    assert len(unrecorded) == 12 and max(unrecorded) <= unrecorded_at_most


def test_a_database_outage_of_several_seconds_mid_batch_loses_no_record_and_sends_nothing_twice(smtp):
    # The platform's database refuses every connection for six seconds while a
    # batch is going out (as during a restart); the batch waits, then records.
    smtp.handler.delay = 0.05
    ids = queue_emails(20)
    database = db.get_engine().url.database
    admin = create_engine(db.normalize_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    outcome: dict[str, object] = {}
    sending = threading.Thread(target=lambda: outcome.update(counts=send_in_process(ids)))
    sending.start()
    try:
        wait_for(lambda: len(smtp.handler.received) >= 5, 30, "five emails out")
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                         {"d": database})
        time.sleep(6)  # longer than the record's first three tries together (4.2 s)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    sending.join(60)
    assert outcome.get("counts") == {"sent": 20}
    assert statuses() == {"sent": 20}
    assert sorted(r for got in smtp.handler.received for r in got.recipients) == sorted(
        f"user{i}@example.test" for i in range(20))


def test_a_click_token_signed_with_a_line_break_in_its_url_still_redirects(client, settings):
    # Links rewritten before line breaks were dropped carry one: the redirect header cannot.
    [message_id] = queue_emails(1)
    token = Tracker(settings.secret_key, "x").sign("click", [message_id, "https://shop.test/long\n/path"])  # then's format
    response = client.get(f"/t/c/{token}")
    assert (response.status_code, response.headers["Location"]) == (302, "https://shop.test/long/path")
