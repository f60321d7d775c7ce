"""An experiment's ``holdout_percent``: a "no email" arm at one email step. The
engine holds a fixed share of the step's visits (sends nothing, passes them on)
and records each; the experiments endpoint reports them as the ``holdout`` arm,
with their conversions after the visit for the ``converted`` metric."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from models import Enrollment, Event, ExperimentHoldout, Message, db
from models.base import utcnow
from analytics.sequential import half_width
from sequencing.holdout import arm_point
from tests.api.test_experiments_api import AB, _messages, _sequence
from tests.support import factories
from tests.support.engine import run_due

pytestmark = pytest.mark.committing

PEOPLE = 200
PERCENT = 30


def _steps(metric: str, **experiment) -> list[dict]:
    return [{"type": "email", "subject": "Welcome", "text": "Hello.", "variants": AB,
             "experiment": {"metric": metric, "holdout_percent": PERCENT, **experiment}},
            {"type": "delay", "days": 3}]


def _drive(account_id: int, metric: str, visit_at, **settings) -> tuple[int, int, dict[int, int]]:
    """A sequence of the experiment step and a delay, PEOPLE enrollments walked over
    the step at ``visit_at``: (sequence id, step id, enrollment id -> subscriber id)."""
    sid = factories.sequence(account_id, _steps(metric, min_per_variant=5), settings=settings)
    people = factories.subscribers(account_id, PEOPLE, prefix=f"arm-{metric}-")
    enrollments = factories.enroll(account_id, sid, people, visit_at - timedelta(seconds=1))
    run_due(visit_at)
    with db.session_scope() as s:
        step = s.scalar(select(Message.step_id).where(Message.sequence_id == sid).limit(1))
        who = dict(s.execute(select(Enrollment.id, Enrollment.subscriber_id).where(Enrollment.id.in_(enrollments))).all())
    return sid, step, who


def test_the_arm_holds_its_share_sends_them_nothing_and_counts_their_conversions(client, alice):
    now = utcnow()
    visit = now - timedelta(days=3)
    sid, step, who = _drive(alice.account_id, "converted", visit, goal={"event": "purchase", "within_days": 1})

    with db.session_scope() as s:
        held = {e: (sub, at) for e, sub, at in s.execute(
            select(ExperimentHoldout.enrollment_id, ExperimentHoldout.subscriber_id, ExperimentHoldout.held_at)
            .where(ExperimentHoldout.step_id == step))}
        messages = {e: (v, m) for e, v, m in s.execute(
            select(Message.enrollment_id, Message.variant, Message.id).where(Message.sequence_id == sid))}
        walked = set(s.scalars(select(Enrollment.current_step).where(Enrollment.id.in_(who))))
    expected = {e for e in who if arm_point(step, e) < PERCENT}
    assert 0 < len(expected) < PERCENT / 100 * PEOPLE * 1.5  # the draw is a share, not everyone or no one
    assert set(held) == expected  # exactly the drawn visits, each once
    assert all(sub == who[e] and at == visit for e, (sub, at) in held.items())
    assert set(messages) == set(who) - expected  # the held ones got no message, everyone else one
    assert len(held) + len(messages) == PEOPLE
    assert walked == {1}  # held or sent, every enrollment passed on to the delay

    # The sends went out; some people of each group buy within the day after the
    # visit, some too late (2 days after), some held ones before the visit.
    held_people = sorted(held)
    a_people = sorted(e for e, (v, _m) in messages.items() if v == "A")
    b_people = sorted(e for e, (v, _m) in messages.items() if v == "B")
    buy_in_window = held_people[:5] + a_people[:12] + b_people[:20]
    buy_late = held_people[5:9] + a_people[12:15]
    buy_before = held_people[9:12]
    with db.session_scope() as s:
        s.execute(update(Message).where(Message.sequence_id == sid).values(status="sent", sent_at=visit))
        rows = [Event(account_id=alice.account_id, subscriber_id=who[e], message_id=m, name="sent",
                      dedup_key=f"sent:{m}", occurred_at=visit) for e, (_v, m) in messages.items()]
        for when, group in ((visit + timedelta(hours=12), buy_in_window), (visit + timedelta(days=2), buy_late),
                            (visit - timedelta(hours=1), buy_before)):
            rows += [Event(account_id=alice.account_id, subscriber_id=who[e], name="purchase",
                           dedup_key=f"buy:{e}", occurred_at=when) for e in group]
        s.add_all(rows)

    body = client.get(f"/api/v1/email-sequences/{sid}/experiments", headers=alice.headers).get_json()
    (experiment,) = body
    variants = {v["name"]: v for v in experiment["variants"]}
    assert [v["name"] for v in experiment["variants"]] == ["A", "B", "holdout"]
    arm = variants["holdout"]
    assert (arm["sent"], arm["held"], arm["successes"]) == (len(held), len(held), 5)
    assert arm["rate"] == pytest.approx(5 / len(held))
    assert (variants["A"]["sent"], variants["A"]["successes"]) == (len(a_people), 12)
    assert (variants["B"]["sent"], variants["B"]["successes"]) == (len(b_people), 20)
    assert variants["A"]["held"] is None
    for name, bought in (("A", 12), ("B", 20)):
        rate, arm_rate = bought / variants[name]["sent"], 5 / len(held)
        assert variants[name]["difference_over_holdout"] == pytest.approx(rate - arm_rate)
        assert variants[name]["lift_over_holdout"] == pytest.approx(rate / arm_rate - 1)
        # The mSPRT interval of the variant over the arm, at alpha / variants = 0.05 / 2.
        diff, width = half_width(variants[name]["sent"], bought, len(held), 5, 0.05 / 2)
        assert diff == pytest.approx(rate - arm_rate)
        assert variants[name]["confidence_interval_over_holdout"] == pytest.approx([diff - width, diff + width])
        assert 0 < width < 1
    assert arm["difference_over_holdout"] is None and arm["lift"] is None
    assert experiment["winner"] != "holdout"

    csv = client.get(f"/api/v1/email-sequences/{sid}/experiments?format=csv", headers=alice.headers)
    lines = csv.get_data(as_text=True).splitlines()
    assert "held" in lines[0].split(",") and lines[-1].split(",")[4] == "holdout"


def test_for_opened_the_arm_has_no_rate_and_cannot_win(client, alice):
    now = utcnow()
    sid, step, who = _drive(alice.account_id, "opened", now)
    _messages(alice.account_id, sid, step, "A", 400, 40)
    _messages(alice.account_id, sid, step, "B", 400, 120)
    with db.session_scope() as s:
        held = set(s.scalars(select(ExperimentHoldout.enrollment_id).where(ExperimentHoldout.step_id == step)))
    assert held == {e for e in who if arm_point(step, e) < PERCENT} and held  # exactly the drawn visits
    n_held = len(held)

    (experiment,) = client.get(f"/api/v1/email-sequences/{sid}/experiments", headers=alice.headers).get_json()
    assert (experiment["status"], experiment["winner"]) == ("decided", "B")
    arm = experiment["variants"][-1]
    assert (arm["name"], arm["sent"], arm["held"], arm["successes"], arm["rate"]) == (
        "holdout", n_held, n_held, None, None)
    assert all(v["difference_over_holdout"] is None and v["lift_over_holdout"] is None
               for v in experiment["variants"])

    # B is promoted, and the arm keeps holding its share of new visits.
    people = factories.subscribers(alice.account_id, 50, prefix="late-")
    enrollments = factories.enroll(alice.account_id, sid, people, now)
    run_due(now + timedelta(seconds=1))
    with db.session_scope() as s:
        sent = list(s.scalars(select(Message.variant).where(Message.enrollment_id.in_(enrollments))))
        late_held = set(s.scalars(select(ExperimentHoldout.enrollment_id)
                                  .where(ExperimentHoldout.enrollment_id.in_(enrollments))))
    assert late_held == {e for e in enrollments if arm_point(step, e) < PERCENT}
    assert set(sent) == {"B"} and len(sent) == 50 - len(late_held)


@pytest.mark.parametrize("bad", [50.5, 51, -1, "ten", True, None])
def test_a_bad_holdout_percent_is_a_422_naming_it(client, alice, bad):
    steps = [{"type": "email", "subject": "Hi", "text": "Hello.", "variants": AB,
              "experiment": {"metric": "converted", "holdout_percent": bad}}]
    response = client.post("/api/v1/email-sequences", json={"name": "Arm", "steps": steps}, headers=alice.headers)
    if bad is None:  # absent is the default, 0
        assert response.status_code == 201, response.get_json()
        return
    assert response.status_code == 422, response.get_json()
    assert "steps.0.experiment.holdout_percent" in response.get_json()["errors"]["json"]


@pytest.mark.parametrize("good", [0, 12.5, 50])
def test_a_holdout_percent_of_0_to_50_is_kept(client, alice, good):
    steps = [{"type": "email", "subject": "Hi", "text": "Hello.", "variants": AB,
              "experiment": {"metric": "converted", "holdout_percent": good}}]
    response = client.post("/api/v1/email-sequences", json={"name": "Arm", "steps": steps}, headers=alice.headers)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["steps"][0]["experiment"].get("holdout_percent", 0) == good


def test_a_variant_named_holdout_is_refused_when_the_arm_is_on(client, alice):
    variants = [{"name": "A", "subject": "Hi"}, {"name": "holdout", "subject": "Hey"}]
    steps = [{"type": "email", "subject": "Hi", "text": "Hello.", "variants": variants,
              "experiment": {"metric": "opened", "holdout_percent": 10}}]
    response = client.post("/api/v1/email-sequences", json={"name": "Arm", "steps": steps}, headers=alice.headers)
    assert response.status_code == 422
    assert "steps.0.experiment.holdout_percent" in response.get_json()["errors"]["json"]
    steps[0]["experiment"] = {"metric": "opened"}
    response = client.post("/api/v1/email-sequences", json={"name": "Arm", "steps": steps}, headers=alice.headers)
    assert response.status_code == 201, response.get_json()
