"""Stored experiment decisions and promotion: after a fold the analytics pool
stores the first decided or no-difference answer per step, the experiments
endpoint keeps to it, and with ``auto_promote`` the engine sends the winner to
every later visit of the step."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from models import ExperimentDecision, Message, Sequence, db
from models.base import utcnow
from analytics.experiment_results import settle_experiments
from analytics.rollups import fold_chunk
from tasks.analytics import fold_account
from tests.api.test_experiments_api import AB, _messages, _sequence
from tests.support import factories
from tests.support.engine import run_due

pytestmark = pytest.mark.committing


def _steps(**experiment) -> list[dict]:
    return [{"type": "email", "subject": "Welcome", "text": "Hello.", "variants": AB,
             "experiment": {"metric": "opened", **experiment}}]


def _decisions(sequence_id: int) -> list[tuple[int, str, str | None]]:
    with db.session_scope() as s:
        return [tuple(row) for row in s.execute(select(ExperimentDecision.step_id, ExperimentDecision.status, ExperimentDecision.winner)
                              .where(ExperimentDecision.sequence_id == sequence_id))]


def _new_visits(account_id: int, sequence_id: int, step_id: int, people: int, prefix: str) -> list[str | None]:
    """Enroll ``people`` new subscribers, advance them, and return the variant of
    each message they were queued on the step."""
    now = utcnow()
    with db.session_scope() as s:
        s.execute(update(Sequence).where(Sequence.id == sequence_id).values(status="active"))
    enrollments = factories.enroll(account_id, sequence_id, factories.subscribers(account_id, people, prefix=prefix),
                                   now - timedelta(seconds=1))
    run_due(now)
    with db.session_scope() as s:
        return list(s.scalars(select(Message.variant).where(Message.enrollment_id.in_(enrollments),
                                                              Message.step_id == step_id)))


def test_a_clear_winner_is_stored_after_the_fold_and_every_later_visit_gets_it(client, alice):
    sid, (step,) = _sequence(client, alice, _steps())
    _messages(alice.account_id, sid, step, "A", 400, 40)
    _messages(alice.account_id, sid, step, "B", 400, 120)

    fold_account(alice.account_id)

    assert _decisions(sid) == [(step, "decided", "B")]
    body = client.get(f"/api/v1/email-sequences/{sid}/experiments", headers=alice.headers).get_json()
    assert [(e["status"], e["winner"]) for e in body] == [("decided", "B")]
    variants = _new_visits(alice.account_id, sid, step, 40, "new-")
    assert len(variants) == 40 and set(variants) == {"B"}


def test_without_auto_promote_the_decided_step_keeps_splitting(client, alice):
    sid, (step,) = _sequence(client, alice, _steps(auto_promote=False))
    _messages(alice.account_id, sid, step, "A", 400, 40)
    _messages(alice.account_id, sid, step, "B", 400, 120)

    fold_account(alice.account_id)

    assert _decisions(sid) == [(step, "decided", "B")]
    variants = _new_visits(alice.account_id, sid, step, 40, "new-")
    assert len(variants) == 40 and set(variants) == {"A", "B"}


def test_a_no_difference_decision_is_stored_and_promotes_nothing(client, alice):
    sid, (step,) = _sequence(client, alice, _steps())
    _messages(alice.account_id, sid, step, "A", 1000, 900)
    _messages(alice.account_id, sid, step, "B", 1000, 900)

    fold_account(alice.account_id)

    assert _decisions(sid) == [(step, "no_difference", None)]
    body = client.get(f"/api/v1/email-sequences/{sid}/experiments", headers=alice.headers).get_json()
    assert [(e["status"], e["winner"]) for e in body] == [("no_difference", None)]
    variants = _new_visits(alice.account_id, sid, step, 40, "new-")
    assert len(variants) == 40 and set(variants) == {"A", "B"}


def test_a_stored_decision_stands_when_later_counts_would_say_otherwise(client, alice):
    sid, (step,) = _sequence(client, alice, _steps())
    _messages(alice.account_id, sid, step, "A", 400, 40)
    _messages(alice.account_id, sid, step, "B", 400, 120)
    fold_account(alice.account_id)
    with db.session_scope() as s:
        first = s.execute(select(ExperimentDecision.id, ExperimentDecision.decided_at, ExperimentDecision.report)).one()

    # Enough later sends for A to lead by far: decided on these counts alone, A would win.
    _messages(alice.account_id, sid, step, "A", 2000, 1800)
    _messages(alice.account_id, sid, step, "B", 2000, 100)
    fold_account(alice.account_id)

    with db.session_scope() as s:
        assert s.execute(select(ExperimentDecision.id, ExperimentDecision.decided_at,
                                ExperimentDecision.report)).all() == [first]
    body = client.get(f"/api/v1/email-sequences/{sid}/experiments", headers=alice.headers).get_json()
    assert [(e["status"], e["winner"]) for e in body] == [("decided", "B")]
    assert [v["sent"] for v in body[0]["variants"]] == [2400, 2400]


def test_the_read_that_first_reaches_a_decision_stores_it_so_later_reads_keep_it(client, alice):
    sid, (step,) = _sequence(client, alice, _steps())
    _messages(alice.account_id, sid, step, "A", 400, 40)
    _messages(alice.account_id, sid, step, "B", 400, 120)

    body = client.get(f"/api/v1/email-sequences/{sid}/experiments", headers=alice.headers).get_json()

    assert [(e["status"], e["winner"]) for e in body] == [("decided", "B")]
    assert _decisions(sid) == [(step, "decided", "B")]
    _messages(alice.account_id, sid, step, "A", 2000, 1800)
    _messages(alice.account_id, sid, step, "B", 2000, 100)
    body = client.get(f"/api/v1/email-sequences/{sid}/experiments", headers=alice.headers).get_json()
    assert [(e["status"], e["winner"]) for e in body] == [("decided", "B")]


def test_two_workers_settling_the_same_step_at_once_store_one_decision_without_an_error(client, alice):
    sid, (step,) = _sequence(client, alice, _steps())
    _messages(alice.account_id, sid, step, "A", 400, 40)
    _messages(alice.account_id, sid, step, "B", 400, 120)
    with db.session_scope() as s:
        fold_chunk(s, alice.account_id, utcnow(), limit=10_000, wait=False)  # folded, not settled
    first = db.new_session()
    assert settle_experiments(first, alice.account_id, utcnow()) == 1  # inserted, not committed yet
    outcome: list[int | BaseException] = []

    def second_worker() -> None:
        try:
            with db.session_scope() as s:
                outcome.append(settle_experiments(s, alice.account_id, utcnow()))
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            outcome.append(exc)

    worker = threading.Thread(target=second_worker)
    worker.start()
    # Wait until the second insert is blocked on the first one's uncommitted row.
    with db.session_scope() as s:
        while worker.is_alive() and not s.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar():
            s.rollback()
    first.commit()
    first.close()
    worker.join(30)

    assert outcome == [0]
    assert _decisions(sid) == [(step, "decided", "B")]


def test_a_decision_whose_events_a_read_of_the_analytics_folded_is_stored_for_the_engine(client, alice):
    sid, (step,) = _sequence(client, alice, _steps())
    _messages(alice.account_id, sid, step, "A", 400, 40)
    _messages(alice.account_id, sid, step, "B", 400, 120)

    assert client.get(f"/api/v1/email-sequences/{sid}/analytics", headers=alice.headers).status_code == 200
    assert fold_account(alice.account_id) == 0  # the read folded them: the pool finds nothing to fold

    assert _decisions(sid) == [(step, "decided", "B")]
    variants = _new_visits(alice.account_id, sid, step, 40, "new-")
    assert len(variants) == 40 and set(variants) == {"B"}
