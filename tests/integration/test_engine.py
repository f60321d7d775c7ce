"""The engine on real PostgreSQL with time injected: claims, steps, outbox keys."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from models import Enrollment, Event, Message, Subscriber, WebhookDelivery, db
from sequencing.claims import claim_due_enrollments
from sequencing.engine import advance_enrollments
from tests.support import factories
from tests.support.engine import run_due

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday


def messages() -> list[Message]:
    with db.session_scope() as s:
        return list(s.scalars(select(Message).order_by(Message.id)))


def enrollment(eid: int) -> Enrollment:
    with db.session_scope() as s:
        return s.get(Enrollment, eid)


def test_it_writes_one_outbox_message_then_waits_out_the_delay():
    acct = factories.account()
    subs = factories.subscribers(acct, 3)
    seq = factories.sequence(acct, [
        {"type": "email", "subject": "Hi {{ subscriber.first_name }}", "html": "<p>Hello</p>"},
        {"type": "delay", "seconds": 3600},
        {"type": "email", "subject": "Second", "text": "Again"},
    ])
    eids = factories.enroll(acct, seq, subs, T0)

    assert len(run_due(T0)) == 3
    assert {enrollment(e).current_step for e in eids} == {1}
    assert {enrollment(e).next_run_at for e in eids} == {T0 + timedelta(hours=1)}
    assert run_due(T0 + timedelta(minutes=59)) == []
    assert len(run_due(T0 + timedelta(hours=1))) == 3
    assert [m.subject for m in messages()] == ["Hi {{ subscriber.first_name }}"] * 3 + ["Second"] * 3
    assert {enrollment(e).status for e in eids} == {"completed"}


def test_it_never_writes_a_second_message_when_an_advance_is_repeated():
    acct = factories.account()
    subs = factories.subscribers(acct, 5)
    seq = factories.sequence(acct, [{"type": "email", "subject": "Once", "text": "x"}])
    eids = factories.enroll(acct, seq, subs, T0)
    with db.session_scope() as s:
        claim_due_enrollments(s, T0, 100)
    # Two workers got the same batch (a lease ran out mid-advance): the second one's
    # state is stale, as if it had loaded the rows before the first committed.
    with db.session_scope() as s:
        advance_enrollments(s, eids, T0)
    with db.session_scope() as s:
        s.execute(Enrollment.__table__.update().values(current_step=0, status="active", state={}))
    with db.session_scope() as s:
        second = advance_enrollments(s, eids, T0)
    assert second.message_ids == []
    assert len(messages()) == 5


def test_two_racing_claims_never_share_a_row():
    acct = factories.account()
    subs = factories.subscribers(acct, 50)
    seq = factories.sequence(acct, [{"type": "email", "subject": "x", "text": "x"}])
    factories.enroll(acct, seq, subs, T0)
    first, second = db.new_session(), db.new_session()
    try:
        a = claim_due_enrollments(first, T0, 30)
        b = claim_due_enrollments(second, T0, 30)  # SKIP LOCKED: does not wait for the first
        first.commit()
        second.commit()
    finally:
        first.close()
        second.close()
    assert len(a) == 30 and len(b) == 20
    assert not set(a) & set(b)


def test_an_expired_lease_makes_the_enrollment_due_again():
    acct = factories.account()
    seq = factories.sequence(acct, [{"type": "email", "subject": "x", "text": "x"}])
    factories.enroll(acct, seq, factories.subscribers(acct, 1), T0)
    with db.session_scope() as s:
        assert len(claim_due_enrollments(s, T0, 10)) == 1
    with db.session_scope() as s:
        assert claim_due_enrollments(s, T0 + timedelta(minutes=1), 10) == []
        assert len(claim_due_enrollments(s, T0 + timedelta(minutes=6), 10)) == 1


def test_a_condition_branches_on_whether_the_email_was_opened():
    acct = factories.account()
    subs = factories.subscribers(acct, 2)
    seq = factories.sequence(acct, [
        {"type": "email", "subject": "First", "text": "x"},
        {"type": "condition", "condition": {"type": "opened"}, "else_goto": 3, "wait_seconds": 60},
        {"type": "email", "subject": "Opened", "text": "x"},
        {"type": "email", "subject": "Not opened", "text": "x"},
    ])
    opener, other = factories.enroll(acct, seq, subs, T0)
    run_due(T0)
    first = {m.subscriber_id: m.id for m in messages()}
    with db.session_scope() as s:
        s.add(Event(account_id=acct, subscriber_id=subs[0], message_id=first[subs[0]], name="opened",
                    dedup_key="o1", occurred_at=T0 + timedelta(seconds=10)))
    assert run_due(T0 + timedelta(seconds=30)) == []  # still inside the wait
    run_due(T0 + timedelta(seconds=61))
    by_subscriber = {}
    for m in messages():
        by_subscriber.setdefault(m.subscriber_id, []).append(m.subject)
    assert by_subscriber[subs[0]] == ["First", "Opened", "Not opened"]
    assert by_subscriber[subs[1]] == ["First", "Not opened"]


def test_actions_change_tags_and_attributes_and_exit_ends_the_enrollment():
    acct = factories.account()
    [sub] = factories.subscribers(acct, 1)
    seq = factories.sequence(acct, [
        {"type": "action", "action": "add_tag", "tag": "vip"},
        {"type": "action", "action": "set_attribute", "name": "plan", "value": "pro"},
        {"type": "condition", "condition": {"type": "has_tag", "tag": "vip"}, "else_goto": "exit"},
        {"type": "action", "action": "exit"},
        {"type": "email", "subject": "never", "text": "x"},
    ])
    [eid] = factories.enroll(acct, seq, [sub], T0)
    run_due(T0)
    with db.session_scope() as s:
        subscriber = s.get(Subscriber, sub)
        assert subscriber.tags == ["vip"] and subscriber.attributes == {"plan": "pro"}
    assert enrollment(eid).status == "exited" and enrollment(eid).exit_reason == "exit_action"
    assert messages() == []


def test_a_loop_without_a_wait_fails_instead_of_spinning():
    acct = factories.account()
    seq = factories.sequence(acct, [{"type": "action", "action": "add_tag", "tag": "x"}, {"type": "goto", "goto": 0}])
    [eid] = factories.enroll(acct, seq, factories.subscribers(acct, 1), T0)
    run_due(T0)
    assert enrollment(eid).status == "failed"


def test_an_exit_event_ends_the_enrollment_between_steps():
    acct = factories.account()
    [sub] = factories.subscribers(acct, 1)
    seq = factories.sequence(acct, [
        {"type": "email", "subject": "1", "text": "x"}, {"type": "delay", "seconds": 86400},
        {"type": "email", "subject": "2", "text": "x"}], settings={"exit_events": ["purchase"]})
    [eid] = factories.enroll(acct, seq, [sub], T0)
    run_due(T0)
    with db.session_scope() as s:
        s.add(Event(account_id=acct, subscriber_id=sub, name="purchase", occurred_at=T0 + timedelta(hours=2)))
    run_due(T0 + timedelta(days=1))
    assert enrollment(eid).status == "exited" and enrollment(eid).exit_reason == "goal:purchase"
    assert [m.subject for m in messages()] == ["1"]


def test_an_email_outside_the_send_window_waits_for_the_next_opening():
    acct = factories.account()
    seq = factories.sequence(acct, [{"type": "email", "subject": "x", "text": "x"}],
                             settings={"send_window": {"start": "10:00", "end": "12:00", "days": ["tue"]},
                                       "timezone": "Europe/Paris"})
    [eid] = factories.enroll(acct, seq, factories.subscribers(acct, 1), T0)
    run_due(T0)  # Monday 10:00 in Paris: wrong day
    assert messages() == []
    assert enrollment(eid).next_run_at == datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc)  # Tue 10:00 CET
    run_due(datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc))
    assert len(messages()) == 1


def test_the_frequency_cap_holds_marketing_email_but_not_transactional():
    acct = factories.account()
    [sub] = factories.subscribers(acct, 1)
    capped = {"frequency_cap": {"max": 2, "per_days": 7}}
    marketing = factories.sequence(acct, [{"type": "email", "subject": f"m{i}", "text": "x"} for i in range(3)],
                                   settings=capped)
    receipts = factories.sequence(acct, [{"type": "email", "subject": "receipt", "text": "x"}],
                                  settings={"transactional": True})
    [m_eid] = factories.enroll(acct, marketing, [sub], T0)
    factories.enroll(acct, receipts, [sub], T0)
    run_due(T0)
    assert sorted(m.subject for m in messages()) == ["m0", "m1", "receipt"]
    assert enrollment(m_eid).next_run_at == T0 + timedelta(days=7)
    run_due(T0 + timedelta(days=7))
    assert sorted(m.subject for m in messages()) == ["m0", "m1", "m2", "receipt"]


def test_variants_are_assigned_by_weight_and_stay_put():
    acct = factories.account()
    subs = factories.subscribers(acct, 400)
    seq = factories.sequence(acct, [{"type": "email", "subject": "base", "text": "x", "variants": [
        {"name": "a", "subject": "A", "weight": 3}, {"name": "b", "subject": "B", "weight": 1}]}])
    factories.enroll(acct, seq, subs, T0)
    run_due(T0)
    counts: dict[str, int] = {}
    for m in messages():
        counts[m.variant] = counts.get(m.variant, 0) + 1
    assert set(counts) == {"a", "b"}
    assert 240 <= counts["a"] <= 360  # 3:1 over 400, generous bounds for a hash split


def test_a_webhook_step_queues_one_call_and_moves_on():
    acct = factories.account()
    seq = factories.sequence(acct, [{"type": "webhook", "url": "https://hooks.example.test/x", "payload": {"k": 1}},
                                    {"type": "email", "subject": "after", "text": "x"}])
    [eid] = factories.enroll(acct, seq, factories.subscribers(acct, 1), T0)
    run_due(T0)
    with db.session_scope() as s:
        hooks = list(s.scalars(select(WebhookDelivery)))
        assert len(hooks) == 1 and hooks[0].payload["data"] == {"k": 1}
        assert s.scalar(select(func.count(Message.id))) == 1
    assert enrollment(eid).status == "completed"


def test_a_paused_sequence_freezes_its_enrollments():
    acct = factories.account()
    seq = factories.sequence(acct, [{"type": "email", "subject": "x", "text": "x"}], status="paused")
    [eid] = factories.enroll(acct, seq, factories.subscribers(acct, 1), T0)
    run_due(T0)
    assert messages() == []
    assert enrollment(eid).status == "paused" and enrollment(eid).current_step == 0


def test_under_the_frequency_cap_the_higher_priority_sequence_takes_the_last_slot():
    acct = factories.account()
    [sub] = factories.subscribers(acct, 1)
    cap = {"frequency_cap": {"max": 1, "per_days": 7}}
    newsletter = factories.sequence(acct, [{"type": "email", "subject": "newsletter", "text": "x"}],
                                    settings={**cap, "priority": 0})
    renewal = factories.sequence(acct, [{"type": "email", "subject": "renewal", "text": "x"}],
                                 settings={**cap, "priority": 10})
    # The newsletter enrollment has the lower id, so it is advanced first in the batch.
    [low] = factories.enroll(acct, newsletter, [sub], T0)
    factories.enroll(acct, renewal, [sub], T0)
    run_due(T0)
    assert [m.subject for m in messages()] == ["renewal"]
    assert enrollment(low).next_run_at == T0 + timedelta(minutes=1)  # held for the higher one, then looks again
    run_due(T0 + timedelta(minutes=1))
    assert [m.subject for m in messages()] == ["renewal"]
    assert enrollment(low).next_run_at == T0 + timedelta(days=7)


def test_wait_until_goes_on_when_the_event_arrives_and_branches_on_timeout():
    acct = factories.account()
    buyer, browser = factories.subscribers(acct, 2)
    seq = factories.sequence(acct, [
        {"type": "wait_until", "until": {"event": "purchase"}, "timeout_seconds": 3600, "on_timeout_goto": 3},
        {"type": "email", "subject": "thanks", "text": "x"},
        {"type": "action", "action": "exit"},
        {"type": "email", "subject": "still thinking?", "text": "x"}])
    factories.enroll(acct, seq, [buyer, browser], T0)
    run_due(T0)
    assert messages() == []
    with db.session_scope() as s:
        s.add(Event(account_id=acct, subscriber_id=buyer, name="purchase", occurred_at=T0 + timedelta(minutes=10)))
    run_due(T0 + timedelta(minutes=10))
    run_due(T0 + timedelta(hours=1))
    by_subscriber: dict[int, list[str]] = {}
    for m in messages():
        by_subscriber.setdefault(m.subscriber_id, []).append(m.subject)
    assert by_subscriber == {buyer: ["thanks"], browser: ["still thinking?"]}
