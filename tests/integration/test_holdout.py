"""Holdouts on both backends the platform runs on: the draw at enrollment, the
engine passing held-out enrollments' email steps unsent, and the lift's counts
(the goal window is date arithmetic each database spells its own way)."""
from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from analytics.holdout import holdout_report
from models import Enrollment, Event, Message, Sequence, db
from sequencing.claims import claim_due_enrollments
from sequencing.engine import advance_enrollments
from sequencing.enroll import enroll_subscribers
from tests.support import factories
from tests.support.database import embedded_sqlite

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
STEPS = [{"type": "email", "subject": "a", "text": "x"}, {"type": "delay", "seconds": 60},
         {"type": "email", "subject": "b", "text": "x"}]


def _advance(now: datetime) -> None:
    with db.session_scope() as s:
        ids = claim_due_enrollments(s, now, 1000)
    with db.session_scope() as s:
        advance_enrollments(s, ids, now)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_held_out_enrollments_get_nothing_and_their_conversions_count_within_the_goal_window(backend, tmp_path: Path):
    with embedded_sqlite(tmp_path) if backend == "sqlite" else nullcontext():
        acct = factories.account_row(T0)
        seq = factories.sequence(acct, STEPS, settings={"holdout_percent": 50,
                                                        "goal": {"event": "purchase", "within_days": 7}})
        people = factories.subscribers(acct, 120)
        with db.session_scope() as s:
            assert enroll_subscribers(s, acct, seq, people, now=T0) == (120, 0)
        _advance(T0)
        _advance(T0 + timedelta(seconds=60))
        with db.session_scope() as s:
            held = set(s.scalars(select(Enrollment.subscriber_id).where(Enrollment.held_out.is_(True))))
            sent_to = list(s.scalars(select(Message.subscriber_id)))
            assert {e.status for e in s.scalars(select(Enrollment))} == {"completed"}
        treated = set(people) - held
        assert held and treated
        assert sorted(sent_to) == sorted(list(treated) * 2)

        # In the window: a day in, and a second before its end; out: a second after, and before enrolling.
        inside = [T0 + timedelta(days=1), T0 + timedelta(days=7, seconds=-1)]
        outside = [T0 + timedelta(days=7, seconds=1), T0 - timedelta(seconds=1)]
        h, t = sorted(held), sorted(treated)
        plan = [(t[0], inside[0]), (t[1], inside[1]), (t[2], outside[0]), (t[3], outside[1]),
                (h[0], inside[1]), (h[1], outside[0]), (h[0], inside[0])]
        with db.session_scope() as s:
            s.add_all(Event(account_id=acct, subscriber_id=sub, name="purchase", occurred_at=when, created_at=when,
                            source="api", dedup_key=f"p{n}") for n, (sub, when) in enumerate(plan))
        with db.session_scope() as s:
            report = holdout_report(s, s.get(Sequence, seq), min_per_group=1)
        assert report["groups"] == [
            {"group": "treated", "enrollments": len(treated), "converted": 2, "rate": 2 / len(treated)},
            {"group": "held_out", "enrollments": len(held), "converted": 1, "rate": 1 / len(held)}]
        assert report["absolute_lift"] == pytest.approx(2 / len(treated) - 1 / len(held))


def test_enrollments_made_by_a_trigger_or_a_move_draw_their_group_as_the_enroll_api_does():
    from sequencing.holdout import is_held_out
    from sequencing.triggers import fire

    acct = factories.account_row(T0)
    triggered = factories.sequence(acct, STEPS, settings={"holdout_percent": 50,
                                                          "trigger": {"type": "tag_added", "tag": "trial"}})
    target = factories.sequence(acct, STEPS, settings={"holdout_percent": 50})
    mover = factories.sequence(acct, [{"type": "action", "action": "move_to_sequence", "sequence_id": target}])
    people = factories.subscribers(acct, 60)
    with db.session_scope() as s:
        assert sum(fire(s, acct, sub, "tag_added", T0, tag="trial") for sub in people) == 60
    factories.enroll(acct, mover, people, T0)
    _advance(T0)
    with db.session_scope() as s:
        for sequence in (triggered, target):
            drawn = dict(s.execute(select(Enrollment.subscriber_id, Enrollment.held_out)
                                   .where(Enrollment.sequence_id == sequence)).all())
            assert drawn == {sub: is_held_out(sequence, sub, 50) for sub in people}
            assert set(drawn.values()) == {True, False}
