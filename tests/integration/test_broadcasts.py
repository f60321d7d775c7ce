"""Broadcasts on the real send path (PostgreSQL, aiosmtpd on loopback), with the
clock injected: each member once, suppression and status obeyed, resumable
starts, per-zone send times, the subject test's winner, cancelling."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update

from analytics.events import record_event
from broadcasts import lifecycle
from broadcasts.report import counts
from broadcasts.sending import HELD_UNTIL, claim_due, run_step
from models import Broadcast, Message, SubscriberScore, Subscriber, Suppression, TopicSubscription, db
from tests.support import factories
from tests.support.broadcasts import broadcast, messages, scheduled, send_due, step, topic_with

T0 = datetime(2026, 12, 7, 8, 30, tzinfo=timezone.utc)
T1 = T0 + timedelta(seconds=1)  # the next tick: what a step queued at T0 is swept at


def test_every_active_member_gets_it_once_and_suppression_is_obeyed(smtp):
    acct = factories.account()
    ids = factories.subscribers(acct, 30)
    outsider = factories.subscribers(acct, 1, prefix="outsider")  # not in the topic
    topic_with(acct, ids)
    with db.session_scope() as s:
        s.execute(update(Subscriber).where(Subscriber.id == ids[0]).values(status="unsubscribed"))
        s.add(Suppression(account_id=acct, email="user1@example.test", reason="manual"))
    bid = scheduled(acct, T0)
    assert step(T0) == "sending"
    assert broadcast(bid).audience_size == 29, "the unsubscribed member is not in the audience"
    send_due(T1)
    got = Counter(r for m in smtp.handler.received for r in m.recipients)
    expected = {f"user{i}@example.test" for i in range(2, 30)}
    assert set(got) == expected and set(got.values()) == {1}
    assert "outsider0@example.test" not in got and outsider
    by_email = {m.to_email: m for m in messages(bid)}
    assert by_email["user1@example.test"].status == "suppressed"
    assert {m.idempotency_key for m in by_email.values()} == {f"broadcast:{bid}:{sid}" for sid in ids[1:]}
    email = smtp.handler.to("user2@example.test")[0]
    assert email["Subject"] == "News for User2", "rendered per member from the broadcast"
    assert email["List-Unsubscribe"], "a broadcast is marketing mail"
    unsubscribe = next(u.strip("<> \r\n") for u in email["List-Unsubscribe"].split(",") if "/u/" in u)
    html = next(p for p in email.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    assert unsubscribe in html, "with the unsubscribe footer"
    # Nothing left to send: the next step finds every message settled.
    assert step(T0 + timedelta(minutes=1)) == "sent"


def test_a_reader_who_left_the_topic_after_queueing_is_not_sent_the_topics_broadcast(smtp):
    acct = factories.account()
    ids = factories.subscribers(acct, 3)
    topic_with(acct, ids)
    bid = scheduled(acct, T0)
    assert step(T0) == "sending" and len(messages(bid)) == 3
    with db.session_scope() as s:  # left on the preference page while the message waited
        s.execute(update(TopicSubscription).where(TopicSubscription.subscriber_id == ids[0]).values(status="left"))
    send_due(T1)
    assert sorted(r for m in smtp.handler.received for r in m.recipients) == ["user1@example.test", "user2@example.test"]
    left = next(m for m in messages(bid) if m.subscriber_id == ids[0])
    assert left.status == "suppressed" and "topic" in (left.error or "")


def test_a_start_that_died_before_its_commit_is_done_again_and_a_repeated_one_adds_no_one(smtp):
    acct = factories.account()
    topic_with(acct, factories.subscribers(acct, 20))
    bid = scheduled(acct, T0)
    with db.session_scope() as s:
        claimed = claim_due(s, T0)
    assert claimed is not None
    s = db.new_session()
    run_step(s, claimed, T0)
    s.rollback()  # the worker died before committing: nothing of the step remains
    s.close()
    assert messages(bid) == [] and broadcast(bid).status == "scheduled"
    assert step(T0) is None, "its claim holds until the lease runs out"
    later = T0 + timedelta(minutes=20)
    assert step(later) == "sending"
    # The bookkeeping said "scheduled" again (as after a lost commit of a later step):
    # the outbox's keys insert no member twice.
    with db.session_scope() as s:
        s.execute(update(Broadcast).where(Broadcast.id == bid).values(status="scheduled", next_run_at=later))
    assert step(later) == "sending"
    assert len(messages(bid)) == 20
    send_due(later + timedelta(seconds=1))
    assert len(smtp.handler.received) == 20


def test_local_time_waits_for_that_hour_in_each_members_zone():
    acct = factories.account()
    zones = {"ny": "America/New_York", "tokyo": "Asia/Tokyo", "none": None, "bogus": "Mars/Olympus"}
    ids = {name: factories.subscribers(acct, 1, prefix=name, timezone=tz)[0] for name, tz in zones.items()}
    topic_with(acct, list(ids.values()))
    bid = scheduled(acct, T0, local_time="09:00")  # T0 is 08:30 UTC on a Monday
    step(T0)
    due = {m.subscriber_id: m.retry_at for m in messages(bid)}
    assert due[ids["ny"]] == datetime(2026, 12, 7, 14, 0, tzinfo=timezone.utc)  # 09:00 EST the same day
    assert due[ids["tokyo"]] == datetime(2026, 12, 8, 0, 0, tzinfo=timezone.utc)  # 09:00 JST is past: tomorrow's
    assert due[ids["none"]] == datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)  # UTC
    assert due[ids["bogus"]] == datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)  # unknown zone: UTC
    assert send_due(T1) == 0, "nothing is due before its hour"


def test_best_time_uses_the_learned_hour_and_falls_back_to_local_time():
    acct = factories.account()
    scored, unscored = factories.subscribers(acct, 2, timezone="Europe/Paris")
    topic_with(acct, [scored, unscored])
    with db.session_scope() as s:
        s.add(SubscriberScore(account_id=acct, subscriber_id=scored, best_send_hour=20, scored_at=T0))
    bid = scheduled(acct, T0, best_time=True, local_time="10:00")
    step(T0)
    due = {m.subscriber_id: m.retry_at for m in messages(bid)}
    assert due[scored] == datetime(2026, 12, 7, 19, 0, tzinfo=timezone.utc)  # 20:00 in Paris (CET)
    assert due[unscored] == datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)  # local_time 10:00 in Paris


def _run_test(smtp, opens: dict[str, float], members: int = 400) -> tuple[int, list[Message]]:
    """A 50% test of A and B with these open rates; returns the broadcast and, after
    the decision, the messages that were held for the winner."""
    acct = factories.account()
    topic_with(acct, factories.subscribers(acct, members))
    bid = scheduled(acct, T0, variants=[{"name": "A", "subject": "Plain"}, {"name": "B", "subject": "Bold"}],
                    test={"percent": 50, "metric": "opened", "wait_seconds": 3600})
    assert step(T0) == "testing"
    rows = messages(bid)
    test_share = [m for m in rows if m.variant is not None]
    held = [m for m in rows if m.variant is None]
    assert all(m.retry_at == HELD_UNTIL for m in held)
    assert 150 < len(test_share) < 250, "about half drawn into the test"
    assert abs(sum(m.variant == "A" for m in test_share) - sum(m.variant == "B" for m in test_share)) < 60
    send_due(T1)
    assert len(smtp.handler.received) == len(test_share), "only the test share is sent during the test"
    with db.session_scope() as s:
        for variant, rate in opens.items():
            mine = [m for m in test_share if m.variant == variant]
            for m in mine[:int(len(mine) * rate)]:
                record_event(s, account_id=acct, subscriber_id=m.subscriber_id, name="opened", now=T0,
                             message_id=m.id)
    with db.session_scope() as s:  # what GET /broadcasts/{id} shows while it waits
        shown = counts(s, s.get(Broadcast, bid))
    for variant, rate in opens.items():
        mine = [m for m in test_share if m.variant == variant]
        assert shown[variant]["sent"] == len(mine) and shown[variant]["opened"] == int(len(mine) * rate)
    assert shown["held"]["queued"] == len(held) and shown["held"]["sent"] == 0
    assert step(T0 + timedelta(minutes=59)) is None, "the test waits its wait_seconds"
    decided_at = T0 + timedelta(hours=1)
    assert step(decided_at) == "sending"
    send_due(decided_at + timedelta(seconds=1))
    held_ids = {m.id for m in held}
    return bid, [m for m in messages(bid) if m.id in held_ids]


def test_the_subject_test_sends_the_winner_to_the_rest(smtp):
    bid, rest = _run_test(smtp, {"A": 0.1, "B": 0.6})
    row = broadcast(bid)
    assert row.winner == "B" and row.decision["status"] == "decided"
    assert row.decision["counts"]["B"]["successes"] > row.decision["counts"]["A"]["successes"]
    assert rest and {m.variant for m in rest} == {"B"} and {m.status for m in rest} == {"sent"}
    subjects = Counter(m["Subject"] for m in (r.message for r in smtp.handler.received))
    assert subjects["Bold"] > subjects["Plain"] and sum(subjects.values()) == 400
    assert Counter(r for m in smtp.handler.received for r in m.recipients).most_common(1)[0][1] == 1


def test_with_no_difference_the_first_variant_goes_and_the_decision_says_so(smtp):
    bid, rest = _run_test(smtp, {"A": 0.3, "B": 0.3})
    row = broadcast(bid)
    assert row.winner == "A" and row.decision["status"] != "decided"
    assert "first variant" in row.decision["chosen"]
    assert rest and {m.variant for m in rest} == {"A"}


def test_cancelling_stops_every_message_not_yet_sent(smtp):
    acct = factories.account()
    topic_with(acct, factories.subscribers(acct, 10))
    bid = scheduled(acct, T0, local_time="09:00")
    step(T0)
    with db.session_scope() as s:
        lifecycle.cancel(s, acct, bid, T0)
    send_due(T0 + timedelta(hours=2))
    assert smtp.handler.received == []
    assert {m.status for m in messages(bid)} == {"suppressed"}
    assert step(T0 + timedelta(hours=2)) is None, "a cancelled broadcast has no step left"


def test_a_message_claimed_after_the_cancel_is_not_sent(smtp):
    acct = factories.account()
    topic_with(acct, factories.subscribers(acct, 3))
    bid = scheduled(acct, T0)
    step(T0)
    with db.session_scope() as s:  # cancelled without touching the messages: as if one was already claimed
        s.execute(update(Broadcast).where(Broadcast.id == bid).values(status="cancelled"))
    send_due(T1)
    assert smtp.handler.received == []
    assert {m.error for m in messages(bid)} == {"broadcast cancelled"}


def test_broadcast_messages_count_toward_a_sequences_frequency_cap():
    from tests.support.engine import run_due

    acct = factories.account()
    sid, other = factories.subscribers(acct, 2)
    topic_with(acct, [sid])  # only the first gets the broadcast
    scheduled(acct, T0)
    step(T0)
    seq = factories.sequence(acct, [{"type": "email", "subject": "Hi", "text": "x"}],
                             settings={"frequency_cap": {"max": 1, "per_days": 1}})
    factories.enroll(acct, seq, [sid, other], T0)
    run_due(T0 + timedelta(minutes=1))
    with db.session_scope() as s:
        got = set(s.scalars(select(Message.subscriber_id).where(Message.sequence_id == seq)))
    assert got == {other}, "the broadcast took the first one's one slot of the day; the other's was free"


def test_the_embedded_sqlite_default_sends_a_tested_local_time_broadcast(tmp_path, smtp):
    """The same statements on SQLite: the set-wise insert with its CASEs, the draw,
    the decision's UPDATE, the sender's broadcast path."""
    from tests.support.database import embedded_sqlite

    with embedded_sqlite(tmp_path):
        acct = factories.account_row(T0)
        ids = factories.subscribers(acct, 120, timezone="Asia/Tokyo")
        topic_with(acct, ids)
        bid = scheduled(acct, T0, local_time="09:00", variants=[{"name": "A", "subject": "a"}, {"name": "B"}],
                        test={"percent": 50, "wait_seconds": 60})
        assert step(T0) == "testing"
        rows = messages(bid)
        assert len(rows) == 120 and {m.idempotency_key for m in rows} == {f"broadcast:{bid}:{i}" for i in ids}
        test_share = {m.id for m in rows if m.variant}
        assert 30 < len(test_share) < 90
        send_due(T1)
        assert len(smtp.handler.received) == len(test_share)
        assert step(T0 + timedelta(seconds=60)) == "sending"
        rest = [m for m in messages(bid) if m.id not in test_share]
        assert {m.variant for m in rest} == {"A"}, "too few sends to tell: the first variant"
        assert {m.retry_at for m in rest} == {datetime(2026, 12, 8, 0, 0, tzinfo=timezone.utc)}  # 09:00 in Tokyo
        send_due(datetime(2026, 12, 8, 0, 0, 1, tzinfo=timezone.utc))
        assert len(smtp.handler.received) == 120
        assert step(datetime(2026, 12, 8, 0, 1, tzinfo=timezone.utc)) == "sent"
