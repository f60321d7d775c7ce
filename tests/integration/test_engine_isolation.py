"""One enrollment that cannot be advanced fails alone: the rest of its advance
batch, other accounts' enrollments included, goes on (issue "Hardening", item 5)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select, update

from models import Enrollment, Message, Step, db
from sequencing.claims import claim_enrollments
from sequencing.engine import CRASH_RETRY, MAX_CRASHES, advance_enrollments
from tests.support import factories
from tests.support.database import embedded_sqlite
from tests.support.engine import run_due

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday


def enrollment(eid: int) -> Enrollment:
    with db.session_scope() as s:
        return s.get(Enrollment, eid)


def subjects() -> list[str]:
    with db.session_scope() as s:
        return sorted(s.scalars(select(Message.subject)))


def two_accounts_one_poisoned(bad_step: dict) -> tuple[list[int], int]:
    """Two accounts' enrollments due at T0: three good ones, and one whose only step is ``bad_step``."""
    good_acct, bad_acct = factories.account("Good"), factories.account("Bad")
    good_seq = factories.sequence(good_acct, [{"type": "email", "subject": "Welcome", "text": "x"}])
    bad_seq = factories.sequence(bad_acct, [bad_step])
    # The bad one sorts first in the batch, so nothing before it could have hidden the fault.
    [bad] = factories.enroll(bad_acct, bad_seq, factories.subscribers(bad_acct, 1, prefix="bad"), T0)
    good = factories.enroll(good_acct, good_seq, factories.subscribers(good_acct, 3, prefix="good"), T0)
    return good, bad


def test_an_enrollment_whose_step_raises_fails_alone_and_the_other_accounts_batch_advances():
    # Variants written straight into the row as names, not objects: the engine's
    # A/B choice calls .get() on each and raises AttributeError.
    good, bad = two_accounts_one_poisoned({"type": "email", "subject": "Bad", "text": "x", "variants": ["A", "B"]})

    assert len(run_due(T0)) == 3
    assert {enrollment(e).status for e in good} == {"completed"}
    assert subjects() == ["Welcome"] * 3
    first = enrollment(bad)
    assert (first.status, first.crashes, first.claimed_until) == ("active", 1, None)
    assert "AttributeError" in first.error
    assert first.next_run_at == T0 + CRASH_RETRY

    now = T0
    for crash in range(2, MAX_CRASHES + 1):
        assert enrollment(bad).status == "active", f"failed after {crash - 1} crashes, before {MAX_CRASHES}"
        now = enrollment(bad).next_run_at
        assert run_due(now) == []
        assert enrollment(bad).crashes == crash
    failed = enrollment(bad)
    assert failed.status == "failed"
    assert failed.next_run_at is None and failed.completed_at == now
    assert failed.exit_reason.startswith("advance crashed: AttributeError")
    assert run_due(now + timedelta(days=1)) == []
    assert subjects() == ["Welcome"] * 3


def test_an_enrollment_that_crashed_once_is_retried_and_its_count_cleared_when_it_advances():
    good, bad = two_accounts_one_poisoned({"type": "email", "subject": "Later", "text": "x", "variants": ["A"]})
    run_due(T0)
    assert enrollment(bad).crashes == 1
    with db.session_scope() as s:  # the step is put right meanwhile
        s.execute(update(Step).where(Step.sequence_id == enrollment(bad).sequence_id)
                  .values(config={"subject": "Later", "text": "x"}))
    assert run_due(T0 + CRASH_RETRY) != []
    fixed = enrollment(bad)
    assert (fixed.status, fixed.crashes, fixed.error) == ("completed", 0, None)
    assert subjects() == ["Later", "Welcome", "Welcome", "Welcome"]


def test_a_batch_with_nothing_wrong_charges_no_crash_and_keeps_its_messages():
    acct = factories.account()
    seq = factories.sequence(acct, [{"type": "email", "subject": "Hi", "text": "x"}])
    eids = factories.enroll(acct, seq, factories.subscribers(acct, 4), T0)
    assert len(run_due(T0)) == 4
    assert {(enrollment(e).status, enrollment(e).crashes, enrollment(e).error) for e in eids} == {("completed", 0, None)}


def test_a_lease_its_worker_died_holding_counts_a_crash_and_the_poison_row_is_failed_at_the_limit():
    acct = factories.account()
    seq = factories.sequence(acct, [{"type": "email", "subject": "Hi", "text": "x"}])
    [poison, other] = factories.enroll(acct, seq, factories.subscribers(acct, 2), T0)
    lease = timedelta(minutes=5)
    now = T0
    with db.session_scope() as s:
        first = claim_enrollments(s, now, 10, lease)
    assert (first.ids, first.crashed, first.healthy) == ([poison, other], [], [poison, other])
    with db.session_scope() as s:  # the other one is advanced; the poison row's worker dies every time
        advance_enrollments(s, [other], now)
    for crash in range(1, MAX_CRASHES + 1):
        now += lease + timedelta(seconds=1)
        with db.session_scope() as s:
            claim = claim_enrollments(s, now, 10, lease)
        assert (claim.ids, claim.crashed, claim.healthy) == ([poison], [poison], [])
        assert enrollment(poison).crashes == crash
    with db.session_scope() as s:
        assert advance_enrollments(s, [poison], now).message_ids == []
    dead = enrollment(poison)
    assert dead.status == "failed"
    assert dead.exit_reason == f"abandoned: its advance crashed {MAX_CRASHES} times in a row"
    assert subjects() == ["Hi"]


def test_on_the_embedded_sqlite_a_subject_with_a_lone_surrogate_fails_alone(tmp_path: Path):
    """The reported case: SQLite stores the step (its JSON escapes the surrogate),
    but its driver cannot encode the outbox row's subject, so the batch's one
    INSERT raised and every enrollment in it stayed where it was."""
    with embedded_sqlite(tmp_path):
        good, bad = two_accounts_one_poisoned({"type": "email", "subject": "Bad \ud800", "text": "x"})
        assert len(run_due(T0)) == 3
        assert {enrollment(e).status for e in good} == {"completed"}
        assert subjects() == ["Welcome"] * 3
        assert enrollment(bad).crashes == 1
        assert "surrogates not allowed" in enrollment(bad).error
        now = T0
        while enrollment(bad).status == "active":
            now = enrollment(bad).next_run_at
            run_due(now)
        failed = enrollment(bad)
        assert (failed.status, failed.crashes) == ("failed", MAX_CRASHES)
        assert "UnicodeEncodeError" in failed.exit_reason
        assert subjects() == ["Welcome"] * 3


def test_the_tick_sends_an_enrollment_whose_lease_ran_out_in_a_task_of_its_own(worker):
    from celery.signals import before_task_publish

    from models import utcnow
    from tasks.sequencing import advance, tick
    from tests.support.waiting import wait_for

    acct = factories.account()
    seq = factories.sequence(acct, [{"type": "email", "subject": "Hi", "text": "x"}])
    now = utcnow()
    eids = factories.enroll(acct, seq, factories.subscribers(acct, 3), now - timedelta(minutes=10))
    died = eids[1]
    with db.session_scope() as s:  # a worker took it and died: its lease ran out without a release
        s.execute(update(Enrollment).where(Enrollment.id == died).values(claimed_until=now - timedelta(minutes=1)))
    published: list[str] = []

    def seen(headers: dict | None = None, **_: object) -> None:
        if headers and headers.get("task") == advance.name:
            published.append(headers["argsrepr"])

    before_task_publish.connect(seen, weak=False)
    try:
        tick.apply(throw=True)
    finally:
        before_task_publish.disconnect(seen)

    healthy = [e for e in eids if e != died]
    assert sorted(published) == sorted([f"([2 ids: {healthy[0]}, {healthy[1]}],)", f"([1 ids: {died}],)"])
    wait_for(lambda: {enrollment(e).status for e in eids} == {"completed"}, what="all three to be advanced")
    assert enrollment(died).crashes == 0, "an advance that succeeds clears the count"
    assert subjects() == ["Hi"] * 3
