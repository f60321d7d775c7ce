"""The funnel from recorded step transitions, on real parts: enrollments made
through the API, walked by the real engine through a condition branch, a goto
back, a goal exit, an exit branch, an unsubscribe and an erasure; the funnel's
numbers checked against the paths driven, before and after the analytics fold,
and the fold checked against a second fold at once and a worker killed with
kill -9 in the middle of it."""
from __future__ import annotations

import secrets
import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text

from analytics.rollups import fold_chunk
from delivery.unsubscribe import end_enrollments
from models import Enrollment, StepFlowRollup, StepTransition, db
from models.base import utcnow
from sequencing.claims import claim_due_enrollments
from sequencing.engine import advance_enrollments
from tests.conftest import TEST_ENV
from tests.support import factories
from tests.support.database import fresh_database, migrate
from tests.support.engine import run_due
from tests.support.processes import Proc, platform_env, running, worker_argv
from tests.support.waiting import at_once, wait_for

STEPS = [
    {"type": "email", "subject": "One", "text": "1"},                                        # 0
    {"type": "delay", "seconds": 60},                                                        # 1
    {"type": "condition", "condition": {"type": "has_tag", "tag": "buyer"}, "else_goto": 4},  # 2
    {"type": "email", "subject": "Thanks", "text": "t"},                                     # 3
    {"type": "condition", "condition": {"type": "has_tag", "tag": "loop"}, "else_goto": 7},   # 4
    {"type": "action", "action": "remove_tag", "tag": "loop"},                               # 5
    {"type": "goto", "goto": 1},                                                             # 6
    {"type": "condition", "condition": {"type": "has_tag", "tag": "stay"}, "else_goto": "exit"},  # 7
    {"type": "delay", "seconds": 3600},                                                      # 8
]
FIELDS = ("entered", "passed", "exited", "exited_goal", "exited_condition", "exited_unsubscribed", "failed", "waiting")


def _visits(*positions: int) -> list[tuple[int, str]]:
    """Entered and passed each position in turn."""
    return [(p, kind) for p in positions for kind in ("entered", "passed")]


# Each person's walk as driven below: (position, what happened there).
PATHS = {
    "plain": _visits(0, 1, 2, 4) + [(7, "entered"), (7, "exit")],
    "buyer": _visits(0, 1, 2, 3, 4, 7, 8),  # then completed
    "looper": _visits(0, 1, 2, 4, 5, 6, 1, 2, 4, 7) + [(8, "entered")],  # waits at 8
    "converted": _visits(0) + [(1, "entered"), (1, "goal")],
    "erased": _visits(0) + [(1, "entered"), (1, "left")],
    "unsubscribed": _visits(0) + [(1, "entered"), (1, "left")],
}
PEOPLE = {"plain": ([], 2), "buyer": (["buyer", "stay"], 1), "looper": (["loop", "stay"], 1),
          "converted": ([], 1), "erased": ([], 1), "unsubscribed": ([], 1)}


def _expected() -> list[dict[str, int]]:
    counts: Counter[tuple[int, str]] = Counter()
    for name, (_tags, n) in PEOPLE.items():
        for position, kind in PATHS[name]:
            counts[position, kind] += n
    rows = []
    for p in range(len(STEPS)):
        goal, exit_, left = counts[p, "goal"], counts[p, "exit"], counts[p, "left"]
        rows.append({"entered": counts[p, "entered"], "passed": counts[p, "passed"], "exited": goal + exit_ + left,
                     "exited_goal": goal, "exited_condition": exit_ + left, "exited_unsubscribed": left,
                     "failed": 0, "waiting": counts[p, "entered"] - counts[p, "passed"] - goal - exit_ - left})
    return rows


def _funnel(client, tenant, sid: int) -> list[dict[str, int]]:
    body = client.get(f"/api/v1/email-sequences/{sid}/funnel", headers=tenant.headers).get_json()
    assert [r["step"] for r in body["steps"]] == list(range(len(STEPS)))
    return [{k: r[k] for k in FIELDS} for r in body["steps"]]


def _waiting_now(sid: int) -> list[int]:
    """Active or paused enrollments by position, counted from the enrollments themselves."""
    with db.session_scope() as s:
        at = dict(s.execute(select(Enrollment.current_step, func.count()).where(
            Enrollment.sequence_id == sid, Enrollment.status.in_(("active", "paused"))).group_by(
            Enrollment.current_step)).all())
    return [at.get(p, 0) for p in range(len(STEPS))]


def _fold_all(account_id: int, limit: int = 50_000) -> int:
    folded = 0
    while True:
        with db.session_scope() as s:
            fold = fold_chunk(s, account_id, utcnow(), limit=limit)
        folded += fold.transitions
        if fold.caught_up:
            return folded


def _sums(model, account_id: int) -> dict[tuple[int, str], int]:
    with db.session_scope() as s:
        return {(int(p), k): int(n) for p, k, n in s.execute(
            select(model.position, model.kind, func.sum(model.n)).where(model.account_id == account_id)
            .group_by(model.position, model.kind))}


def test_the_funnel_counts_every_visit_of_a_goto_back_and_only_the_steps_a_branch_ran(client, alice, bob):
    sid = factories.sequence(alice.account_id, STEPS, settings={"exit_events": ["purchase"]})
    people = {name: factories.subscribers(alice.account_id, n, prefix=f"{name}-", tags=tags)
              for name, (tags, n) in PEOPLE.items()}
    response = client.post(f"/api/v1/email-sequences/{sid}/subscribers", headers=alice.headers,
                           json={"subscriber_ids": [i for ids in people.values() for i in ids]})
    assert response.status_code == 202 and response.get_json()["enrolled"] == 7
    t0 = utcnow()
    run_due(t0)  # everyone: the first email, then the delay
    [converted], [erased], [unsubscribed] = people["converted"], people["erased"], people["unsubscribed"]
    assert client.post("/api/v1/events", headers=alice.headers,
                       json={"subscriber_id": converted, "name": "purchase"}).status_code == 202
    assert client.delete(f"/api/v1/subscribers/{erased}", headers=alice.headers).status_code == 204
    with db.session_scope() as s:
        assert end_enrollments(s, unsubscribed, "unsubscribed", utcnow()) == 1
    t1 = t0 + timedelta(seconds=61)
    run_due(t1)  # the goal exit; the branches; the looper goes back to the delay
    run_due(t1 + timedelta(seconds=61))  # the looper's second lap, to wait at the last delay
    run_due(t1 + timedelta(seconds=3601))  # the buyer completes; the looper still waits
    expected = _expected()
    assert [row["waiting"] for row in expected] == _waiting_now(sid) == [0, 0, 0, 0, 0, 0, 0, 0, 1]

    unfolded = _funnel(client, alice, sid)
    assert unfolded == expected, "exact from the transitions not folded yet"
    assert _fold_all(alice.account_id) > 0
    assert _funnel(client, alice, sid) == expected, "the same from the folded counts"
    with db.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(StepFlowRollup)
                        .where(StepFlowRollup.sequence_id == sid)) > 0
    assert _sums(StepFlowRollup, alice.account_id) == _sums(StepTransition, alice.account_id)
    assert _sums(StepTransition, alice.account_id)[len(STEPS), "completed"] == 1
    assert client.get(f"/api/v1/email-sequences/{sid}/funnel", headers=bob.headers).status_code == 404


def test_moves_after_a_fold_are_added_to_the_folded_counts_at_once():
    account = factories.account()
    sid = factories.sequence(account, [{"type": "delay", "seconds": 60}, {"type": "email", "subject": "a", "text": "a"}])
    now = utcnow()
    factories.enroll(account, sid, factories.subscribers(account, 5), now)
    run_due(now)
    _fold_all(account)
    run_due(now + timedelta(seconds=61))  # not folded
    with db.session_scope() as s:
        from analytics.funnel import flow_counts  # noqa: PLC0415
        from models import Sequence  # noqa: PLC0415

        counts = flow_counts(s, s.get(Sequence, sid))
    assert {p: dict(k) for p, k in counts.items()} == {0: {"entered": 5, "passed": 5}, 1: {"entered": 5, "passed": 5},
                                                       2: {"completed": 5}}


def _many_transitions(people: int, batch: int) -> tuple[int, int]:
    """(account, transition rows): ``people`` enrolled and advanced ``batch`` at a
    time through a three-step sequence, each batch in a transaction of its own."""
    account = factories.account()
    sid = factories.sequence(account, [{"type": "email", "subject": "a", "text": "a"},
                                       {"type": "condition", "condition": {"type": "has_tag", "tag": "x"},
                                        "else_goto": 2},
                                       {"type": "email", "subject": "b", "text": "b"}])
    now = utcnow()
    factories.enroll(account, sid, factories.subscribers(account, people), now)
    with db.session_scope() as s:
        ids = claim_due_enrollments(s, now, people)
    for i in range(0, len(ids), batch):
        with db.session_scope() as s:
            advance_enrollments(s, ids[i:i + batch], now)
    with db.session_scope() as s:
        rows = s.scalar(select(func.count()).select_from(StepTransition).where(StepTransition.account_id == account))
    return account, rows


def test_two_folds_at_once_count_every_transition_exactly_once():
    account, rows = _many_transitions(300, 10)
    assert rows >= 150
    folded = at_once(lambda: _fold_all(account, limit=7))
    assert sum(folded) == rows
    assert _sums(StepFlowRollup, account) == _sums(StepTransition, account) == {
        (0, "entered"): 300, (0, "passed"): 300, (1, "entered"): 300, (1, "passed"): 300, (2, "entered"): 300, (2, "passed"): 300,
        (3, "completed"): 300}
    assert _fold_all(account) == 0, "a rerun finds nothing left"


@pytest.mark.e2e
def test_a_worker_killed_mid_fold_loses_and_doubles_no_transition(tmp_path: Path):
    account, rows = _many_transitions(1000, 5)

    def folded() -> int:
        with db.session_scope() as s:
            return int(s.scalar(select(func.coalesce(func.sum(StepFlowRollup.n), 0))
                                .where(StepFlowRollup.account_id == account)))

    with running([Proc("analytics", worker_argv("a", queues="analytics", concurrency=1, loglevel="INFO"),
                       platform_env(**TEST_ENV), tmp_path)]) as [worker]:
        worker.wait_ready()
        from tasks.analytics import fold_rollups  # noqa: PLC0415 - the app is configured for this run by now
        fold_rollups.delay(chunk=3)
        wait_for(lambda: folded() > 0, 60, "the worker to commit a first chunk", interval=0.01, detail=worker.tail)
        worker.kill(signal.SIGKILL)
        worker.popen.wait(10)
    total = sum(_sums(StepTransition, account).values())
    assert 0 < folded() < total, "killed mid-fold"
    with db.session_scope() as s:
        left = s.scalar(text("SELECT count(*) FROM step_transitions t JOIN rollup_watermarks w"
                             " ON w.account_id = t.account_id WHERE t.account_id = :a"
                             " AND (t.xact, t.id) > (w.flow_xact, w.flow_id)"), {"a": account})
    assert _fold_all(account) == left > 0
    assert _sums(StepFlowRollup, account) == _sums(StepTransition, account)
    assert sum(n for (p, k), n in _sums(StepFlowRollup, account).items() if k == "completed") == 1000


# (position, status, exit reason) of enrollments made before migration 0018.
BEFORE_0018 = [(0, "active", None), (1, "active", None), (1, "active", None), (1, "paused", None),
               (1, "exited", "goal:purchase"), (2, "exited", "branch_exit"), (2, "active", None),
               (3, "completed", None), (3, "completed", None), (0, "failed", "step error"),
               (2, "exited", "unsubscribed")]


def _funnel_after_upgrade(url: str) -> list[tuple[int, ...]]:
    """Enrollments written at 0017, the database upgraded: the funnel then."""
    from analytics.funnel import step_funnel  # noqa: PLC0415
    from models import Sequence  # noqa: PLC0415

    previous = db._url
    db.configure(url)
    try:
        account = factories.account_row(utcnow())
        sid = factories.sequence(account, [{"type": "email", "subject": "1", "text": "1"},
                                           {"type": "delay", "seconds": 60},
                                           {"type": "email", "subject": "2", "text": "2"}])
        people = factories.subscribers(account, len(BEFORE_0018))
        with db.session_scope() as s:  # through the table: the ORM names columns later revisions add
            s.execute(insert(Enrollment.__table__), [
                {"account_id": account, "sequence_id": sid, "subscriber_id": person, "current_step": step,
                 "status": status, "exit_reason": reason, "enrolled_at": utcnow(), "state": {}}
                for person, (step, status, reason) in zip(people, BEFORE_0018)])
        migrate(url)
        with db.session_scope() as s:
            rows = step_funnel(s, s.get(Sequence, sid))
    finally:
        db.configure(previous)
    return [(r["step"], r["entered"], r["passed"], r["exited_goal"], r["exited_condition"],
             r["exited_unsubscribed"], r["failed"], r["waiting"]) for r in rows]


# Counted from the positions, as the funnel did before: everything before a
# position passed; the rest stopped there as its status says.
FROM_POSITIONS = [(0, 11, 9, 0, 0, 0, 1, 1), (1, 9, 5, 1, 0, 0, 0, 3), (2, 5, 2, 0, 2, 1, 0, 1)]


def test_the_upgrade_counts_existing_enrollments_from_their_positions_on_postgresql():
    with fresh_database(f"eseq_flow_{secrets.token_hex(4)}") as url:
        migrate(url, "0017", "downgrade")
        assert _funnel_after_upgrade(url) == FROM_POSITIONS


def test_the_upgrade_counts_existing_enrollments_from_their_positions_on_sqlite(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'eseq.sqlite'}"
    migrate(url, "0017")
    assert _funnel_after_upgrade(url) == FROM_POSITIONS


def test_an_edit_that_removes_the_step_an_enrollment_waits_at_moves_it_in_the_funnel_too(client, alice):
    email = {"type": "email", "subject": "s", "text": "t"}
    sid = client.post("/api/v1/email-sequences", headers=alice.headers,
                      json={"name": "Long", "steps": [email, email, email, {"type": "delay", "seconds": 60}]}).get_json()["id"]
    assert client.post(f"/api/v1/email-sequences/{sid}/activate", headers=alice.headers).status_code == 200
    client.post(f"/api/v1/email-sequences/{sid}/subscribers", json={"emails": ["wait@example.test"]},
                headers=alice.headers)
    run_due(utcnow())
    before = client.get(f"/api/v1/email-sequences/{sid}/funnel", headers=alice.headers).get_json()["steps"]
    assert [r["waiting"] for r in before] == [0, 0, 0, 1]
    assert client.put(f"/api/v1/email-sequences/{sid}", headers=alice.headers,
                      json={"name": "Short", "steps": [email, {"type": "delay", "seconds": 60}]}).status_code == 200
    after = client.get(f"/api/v1/email-sequences/{sid}/funnel", headers=alice.headers).get_json()["steps"]
    assert [r["waiting"] for r in after] == [0, 1] == _waiting_now(sid)[:2]
    assert [(r["entered"], r["passed"]) for r in after] == [(1, 1), (2, 1)], "visited step 1, then moved onto it"
