"""A large sequence's holdout and experiment-arm counts come from the cache the
analytics pool refreshes (analytics.sequence_cache): exact as of their ``as_of``,
asked for again once a minute old, recounted by the pool's task, never answered
for another goal. "Large" is SYNC_LIMIT rows, lowered here so that a test
sequence is one; small sequences keep being counted live (the other tests)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from analytics import sequence_cache
from analytics.experiment_results import holdout_counts
from analytics.holdout import group_counts
from models import Enrollment, Event, ExperimentHoldout, Message, Sequence, SequenceAnalysis, db
from models.base import utcnow
from tasks.analytics import compute_sequence_analysis, refresh_account_analyses
from tests.api.test_experiment_holdout import _drive
from tests.support import factories

pytestmark = pytest.mark.committing
URL = "/api/v1/email-sequences"
SIMPLE = [{"type": "email", "subject": "Welcome", "text": "Hello."}, {"type": "delay", "seconds": 60}]


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setattr(sequence_cache, "SYNC_LIMIT", 10)


def _buy(account_id: int, subscriber_ids: list[int], when, tag: str) -> None:
    with db.session_scope() as s:
        s.add_all(Event(account_id=account_id, subscriber_id=sub, name="purchase", occurred_at=when, created_at=when,
                        source="api", dedup_key=f"{tag}-{sub}") for sub in subscriber_ids)


def _live(sequence_id: int) -> dict[str, list[int]]:
    with db.session_scope() as s:
        counts = group_counts(s, s.get(Sequence, sequence_id))
    return {"treated": list(counts[False]), "held_out": list(counts[True])}


def _row(sequence_id: int, kind: str) -> SequenceAnalysis:
    with db.session_scope() as s:
        row = s.scalar(select(SequenceAnalysis).where(SequenceAnalysis.sequence_id == sequence_id,
                                                      SequenceAnalysis.kind == kind))
        s.expunge_all()
    return row


def _served(client, tenant, sequence_id: int) -> tuple[dict[str, list[int]], str]:
    response = client.get(f"{URL}/{sequence_id}/holdout", headers=tenant.headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return {g["group"]: [g["converted"], g["enrollments"]] for g in body["groups"]}, body["as_of"]


def _age(sequence_id: int, kind: str, by: timedelta) -> None:
    with db.session_scope() as s:
        row = s.scalar(select(SequenceAnalysis).where(SequenceAnalysis.sequence_id == sequence_id,
                                                      SequenceAnalysis.kind == kind))
        row.computed_at = row.computed_at - by


def test_a_large_sequences_holdout_is_served_from_the_pools_counts_as_of_their_time(client, alice, small_limit):
    sid = factories.sequence(alice.account_id, SIMPLE, settings={"holdout_percent": 40,
                                                                 "goal": {"event": "purchase", "within_days": 7}})
    people = factories.subscribers(alice.account_id, 120)
    start = utcnow() - timedelta(days=1)
    factories.enroll(alice.account_id, sid, people, start)
    with db.session_scope() as s:  # every third held out, as if drawn
        s.execute(update(Enrollment).where(Enrollment.sequence_id == sid, Enrollment.subscriber_id.in_(people[::3]))
                  .values(held_out=True))
        held = dict(s.execute(select(Enrollment.subscriber_id, Enrollment.held_out)
                              .where(Enrollment.sequence_id == sid)).all())
    treated = [p for p in people if not held[p]]
    held_out = [p for p in people if held[p]]
    assert treated and held_out
    _buy(alice.account_id, treated[:30] + held_out[:5], start + timedelta(hours=1), "a")

    # The first read counts and stores; its numbers are the live count's, exactly.
    before = utcnow()
    first, as_of = _served(client, alice, sid)
    assert first == _live(sid) == {"treated": [30, len(treated)], "held_out": [5, len(held_out)]}
    row = _row(sid, "holdout")
    assert row.status == "ready" and row.result["counts"] == first and row.computed_at >= before
    assert row.result["key"] == {"event": "purchase", "within_days": 7}

    # New conversions: not in the answer until the pool recounts, which is asked
    # for only once the counts are a minute old.
    _buy(alice.account_id, treated[30:40], start + timedelta(hours=2), "b")
    again, again_as_of = _served(client, alice, sid)
    assert (again, again_as_of) == (first, as_of)
    assert _row(sid, "holdout").status == "ready"
    _age(sid, "holdout", timedelta(seconds=61))
    stale, _ = _served(client, alice, sid)
    assert stale == first
    assert _row(sid, "holdout").status == "queued"
    assert _served(client, alice, sid)[0] == first  # asked once, not again while queued
    with db.session_scope() as s:
        assert sequence_cache.waiting(s, utcnow()) == [(sid, "holdout")]
    assert refresh_account_analyses() == 1  # beat hands on what a refused enqueue left queued

    assert compute_sequence_analysis(sid, "holdout") is True
    assert compute_sequence_analysis(sid, "holdout") is False  # nobody asked again
    fresh, fresh_as_of = _served(client, alice, sid)
    assert fresh == _live(sid) == {"treated": [40, len(treated)], "held_out": [5, len(held_out)]}
    assert datetime.fromisoformat(fresh_as_of) > datetime.fromisoformat(as_of)
    with db.session_scope() as s:
        assert sequence_cache.waiting(s, utcnow()) == []

    # Another goal: the stored counts are not its counts; the read counts anew.
    with db.session_scope() as s:
        s.get(Sequence, sid).settings = {"holdout_percent": 40, "goal": {"event": "signup", "within_days": 7}}
    other, _ = _served(client, alice, sid)
    assert other == _live(sid) == {"treated": [0, len(treated)], "held_out": [0, len(held_out)]}


def test_a_recount_that_fails_is_stored_as_failed_and_asked_for_again(client, alice, small_limit):
    sid = factories.sequence(alice.account_id, SIMPLE, settings={"holdout_percent": 40, "goal": {"event": "purchase"}})
    factories.enroll(alice.account_id, sid, factories.subscribers(alice.account_id, 40), utcnow())
    _served(client, alice, sid)
    with db.session_scope() as s:
        sequence_cache.fail(s, sid, "holdout", "OperationalError: gone")
    row = _row(sid, "holdout")
    assert (row.status, row.error) == ("failed", "OperationalError: gone")
    _age(sid, "holdout", timedelta(minutes=2))
    _served(client, alice, sid)
    assert _row(sid, "holdout").status == "queued"
    assert compute_sequence_analysis(sid, "holdout") is True
    row = _row(sid, "holdout")
    assert (row.status, row.error) == ("ready", None)


def test_a_large_arms_counts_come_from_the_cache_with_their_own_as_of(client, alice, small_limit):
    visit = utcnow() - timedelta(days=3)
    sid, step, who = _drive(alice.account_id, "converted", visit, goal={"event": "purchase", "within_days": 1})
    with db.session_scope() as s:
        held = sorted(s.scalars(select(ExperimentHoldout.subscriber_id).where(ExperimentHoldout.step_id == step)))
        s.execute(update(Message).where(Message.sequence_id == sid).values(status="sent", sent_at=visit))
    assert len(held) > 10  # more than SYNC_LIMIT: served from the cache
    _buy(alice.account_id, held[:4], visit + timedelta(hours=2), "a")

    def arm() -> tuple[dict, str]:
        response = client.get(f"{URL}/{sid}/experiments", headers=alice.headers)
        assert response.status_code == 200, response.get_json()
        (experiment,) = response.get_json()
        return experiment["variants"][-1], experiment["holdout_as_of"]

    def live() -> dict:
        with db.session_scope() as s:
            sequence = s.get(Sequence, sid)
            steps = [(st, st.config["experiment"]) for st in sequence.steps if st.id == step]
            return holdout_counts(s, sequence, steps)[step]

    first, as_of = arm()
    assert (first["name"], first["held"], first["successes"]) == ("holdout", len(held), 4)
    assert live() == {"held": len(held), "converted": 4}
    assert _row(sid, "experiment_arms").result["counts"] == {str(step): {"held": len(held), "converted": 4}}

    _buy(alice.account_id, held[4:7], visit + timedelta(hours=3), "b")
    assert arm() == (first, as_of)
    _age(sid, "experiment_arms", timedelta(minutes=2))
    assert arm()[0]["successes"] == 4
    assert _row(sid, "experiment_arms").status == "queued"
    assert compute_sequence_analysis(sid, "experiment_arms") is True
    fresh, fresh_as_of = arm()
    assert (fresh["held"], fresh["successes"]) == (len(held), 7)
    assert datetime.fromisoformat(fresh_as_of) > datetime.fromisoformat(as_of)
    assert live() == {"held": len(held), "converted": 7}


def test_a_small_sequence_is_counted_live_and_nothing_is_stored(client, alice):
    sid = factories.sequence(alice.account_id, SIMPLE, settings={"holdout_percent": 40, "goal": {"event": "purchase"}})
    people = factories.subscribers(alice.account_id, 60)
    factories.enroll(alice.account_id, sid, people, utcnow() - timedelta(hours=1))
    before = utcnow()
    counts, as_of = _served(client, alice, sid)
    assert counts == _live(sid) and datetime.fromisoformat(as_of) >= before
    _buy(alice.account_id, people[:9], utcnow(), "a")
    assert _served(client, alice, sid)[0] == _live(sid)
    assert sum(x for x, _n in _live(sid).values()) == 9
    assert _row(sid, "holdout") is None
