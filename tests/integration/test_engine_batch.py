"""The engine reads what a batch needs once: each enrollment must still get its own
answers, what the walk changed must be written as the ORM's flush wrote it, and the
number of statements must not grow with the batch."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from models import Enrollment, Event, Message, db
from sequencing.engine import advance_enrollments
from sequencing.rows import load_enrollments, load_subscribers, write_back
from tests.support import factories
from tests.support.engine import on_each_statement, run_due

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday


def subjects_by_subscriber() -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    with db.session_scope() as s:
        for subscriber_id, subject in s.execute(select(Message.subscriber_id, Message.subject).order_by(Message.id)):
            found.setdefault(subscriber_id, []).append(subject)
    return found


def add_event(account_id: int, subscriber_id: int, name: str, at: datetime, message_id: int | None = None,
              **properties: str) -> None:
    with db.session_scope() as s:
        s.add(Event(account_id=account_id, subscriber_id=subscriber_id, message_id=message_id, name=name,
                    occurred_at=at, properties=properties))


@contextmanager
def counting_statements() -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    with on_each_statement(count):
        yield statements


def test_each_enrollment_in_a_batch_sees_its_own_opens_and_events():
    acct = factories.account()
    alice, bob, carol = factories.subscribers(acct, 3)
    seq = factories.sequence(acct, [
        {"type": "email", "subject": "First", "text": "x"},
        {"type": "condition", "condition": {"type": "opened"}, "else_goto": 3, "wait_seconds": 60},
        {"type": "wait_until", "until": {"event": "purchase"}, "timeout_seconds": 60, "on_timeout_goto": "exit"},
        {"type": "email", "subject": "Last", "text": "x"},
    ])
    factories.enroll(acct, seq, [alice, bob, carol], T0)
    run_due(T0)
    with db.session_scope() as s:
        first = dict(s.execute(select(Message.subscriber_id, Message.id)).all())
    add_event(acct, alice, "opened", T0 + timedelta(seconds=5), message_id=first[alice])
    add_event(acct, bob, "opened", T0 + timedelta(seconds=5), message_id=first[bob])
    add_event(acct, carol, "purchase", T0 + timedelta(seconds=30))  # bought, never opened
    run_due(T0 + timedelta(seconds=61))  # Alice and Bob opened: they start waiting for a purchase
    add_event(acct, alice, "purchase", T0 + timedelta(seconds=90))

    run_due(T0 + timedelta(seconds=121))  # the wait's timeout

    # Carol did not open, so she skipped the wait whatever she bought; of the two
    # who waited, only Alice bought, and Bob timed out of the sequence.
    assert subjects_by_subscriber() == {alice: ["First", "Last"], bob: ["First"], carol: ["First", "Last"]}
    with db.session_scope() as s:
        statuses = dict(s.execute(select(Enrollment.subscriber_id, Enrollment.exit_reason)).all())
    assert statuses == {alice: None, bob: "branch_exit", carol: None}


def test_keyed_instances_of_one_subscriber_in_a_batch_see_only_their_own_events():
    acct = factories.account()
    [alice] = factories.subscribers(acct, 1)
    seq = factories.sequence(acct, [
        {"type": "wait_until", "until": {"event": "purchase"}, "timeout_seconds": 3600, "on_timeout_goto": "exit"},
        {"type": "email", "subject": "thanks", "text": "x"},
    ], settings={"trigger": {"type": "event", "event": "cart", "key_property": "cart_id"}})
    with db.session_scope() as s:
        for key in ("c1", "c2"):
            s.add(Enrollment(account_id=acct, sequence_id=seq, subscriber_id=alice, instance_key=key,
                             next_run_at=T0, enrolled_at=T0, state={}))
    run_due(T0)
    add_event(acct, alice, "purchase", T0 + timedelta(minutes=1), cart_id="c2")
    run_due(T0 + timedelta(minutes=5))
    with db.session_scope() as s:
        by_key = {e.instance_key: e.status for e in s.scalars(select(Enrollment))}
    assert by_key == {"c1": "active", "c2": "completed"}
    assert subjects_by_subscriber() == {alice: ["thanks"]}


def test_the_frequency_cap_counts_each_subscribers_own_emails_in_a_batch():
    acct = factories.account()
    alice, bob = factories.subscribers(acct, 2)
    capped = {"frequency_cap": {"max": 1, "per_days": 7}}
    earlier = factories.sequence(acct, [{"type": "email", "subject": "earlier", "text": "x"}], settings=capped)
    factories.enroll(acct, earlier, [alice], T0 - timedelta(days=1))
    run_due(T0 - timedelta(days=1))
    later = factories.sequence(acct, [{"type": "email", "subject": "later", "text": "x"}], settings=capped)
    [held, _] = factories.enroll(acct, later, [alice, bob], T0)

    run_due(T0)

    assert subjects_by_subscriber() == {alice: ["earlier"], bob: ["later"]}
    with db.session_scope() as s:
        assert s.get(Enrollment, held).next_run_at == T0 + timedelta(days=6)


def test_a_higher_priority_email_sent_earlier_in_the_batch_no_longer_holds_the_last_slot():
    acct = factories.account()
    [alice] = factories.subscribers(acct, 1)
    cap = {"frequency_cap": {"max": 2, "per_days": 7}}
    renewal = factories.sequence(acct, [{"type": "email", "subject": "renewal", "text": "x"}],
                                 settings={**cap, "priority": 10})
    newsletter = factories.sequence(acct, [{"type": "email", "subject": "newsletter", "text": "x"}],
                                    settings={**cap, "priority": 0})
    # The renewal has the lower id, so it sends first and takes one of the two slots.
    factories.enroll(acct, renewal, [alice], T0)
    factories.enroll(acct, newsletter, [alice], T0)
    run_due(T0)
    assert subjects_by_subscriber() == {alice: ["renewal", "newsletter"]}


def test_a_tag_added_mid_batch_sees_an_enrollment_the_batch_already_completed():
    acct = factories.account()
    [alice] = factories.subscribers(acct, 1)
    welcome = factories.sequence(acct, [{"type": "email", "subject": "welcome", "text": "x"}],
                                 settings={"trigger": {"type": "tag_added", "tag": "vip"}, "reentry": "after_completion"})
    tagger = factories.sequence(acct, [{"type": "action", "action": "add_tag", "tag": "vip"}])
    factories.enroll(acct, welcome, [alice], T0)  # lower id: completes first in the batch
    factories.enroll(acct, tagger, [alice], T0)
    run_due(T0)
    with db.session_scope() as s:
        runs = sorted((e.run, e.status) for e in s.scalars(select(Enrollment).where(Enrollment.sequence_id == welcome)))
    assert runs == [(1, "completed"), (2, "active")]


def test_writing_back_leaves_columns_the_walk_did_not_change_to_their_other_writers():
    acct = factories.account()
    seq = factories.sequence(acct, [{"type": "email", "subject": "x", "text": "x"}])
    [eid] = factories.enroll(acct, seq, factories.subscribers(acct, 1), T0)
    walker = db.new_session()
    try:
        [row] = load_enrollments(walker, [eid])
        with db.session_scope() as s:  # a pause commits while the batch is being walked
            s.get(Enrollment, eid).status = "paused"
        row.current_step = 1
        write_back(walker, [row], load_subscribers(walker, {row.subscriber_id}))
        walker.commit()
    finally:
        walker.close()
    with db.session_scope() as s:
        stored = s.get(Enrollment, eid)
        assert (stored.status, stored.current_step) == ("paused", 1)


def test_statements_per_batch_do_not_grow_with_the_batch():
    acct = factories.account()
    steps = [
        {"type": "email", "subject": "First", "text": "x"},
        {"type": "condition", "condition": {"type": "opened"}, "else_goto": 2},
        {"type": "wait_until", "until": {"event": "purchase"}, "timeout_seconds": 3600},
        {"type": "email", "subject": "Last", "text": "x"},
    ]
    counts = []
    for size in (2, 40):
        seq = factories.sequence(acct, steps, settings={"frequency_cap": {"max": 5, "per_days": 7}})
        subs = factories.subscribers(acct, size, prefix=f"batch{size}-")
        ids = factories.enroll(acct, seq, subs, T0)
        with counting_statements() as statements, db.session_scope() as s:
            assert len(advance_enrollments(s, ids, T0).message_ids) == size
        counts.append(len(statements))
    assert counts[0] == counts[1] <= 13  # 13th: the step transitions (core.flow)
