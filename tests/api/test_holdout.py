"""Holdouts: ``settings.holdout_percent`` keeps a stable share of enrollments out
of a sequence's emails while they walk every other step, and
``GET /email-sequences/{id}/holdout`` measures the sequence's lift in conversions
against them."""
from __future__ import annotations

import csv
import io
import math
from datetime import timedelta

import pytest
from scipy.stats import binom
from sqlalchemy import select, update

from analytics.holdout import newcombe_interval
from sequencing.holdout import is_held_out
from models import Enrollment, Message, Sequence, Subscriber, WebhookDelivery, db
from models.base import utcnow
from tests.support import factories
from tests.support.engine import run_due

URL = "/api/v1/email-sequences"
# Everything but the emails must still happen to a held-out enrollment.
WALK = [{"type": "email", "subject": "Welcome", "text": "Hello."},
        {"type": "delay", "seconds": 60},
        {"type": "condition", "condition": {"type": "has_tag", "tag": "vip"}, "else_goto": 3},
        {"type": "action", "action": "add_tag", "tag": "walked"},
        {"type": "webhook", "url": "http://127.0.0.1:9/hook"},
        {"type": "email", "subject": "Day two", "text": "Still here?"}]
SIMPLE = [{"type": "email", "subject": "Welcome", "text": "Hello."}, {"type": "delay", "seconds": 60}]

# The engine's outbox and the events posted are read by other connections.
pytestmark = pytest.mark.committing


def _enroll(client, tenant, sequence_id: int, subscriber_ids: list[int]) -> None:
    response = client.post(f"{URL}/{sequence_id}/subscribers", json={"subscriber_ids": subscriber_ids},
                           headers=tenant.headers)
    assert response.status_code == 202, response.get_json()


def _groups(sequence_id: int) -> dict[int, bool]:
    """subscriber id -> held out, of the sequence's (first-run) enrollments."""
    with db.session_scope() as s:
        return dict(s.execute(select(Enrollment.subscriber_id, Enrollment.held_out).where(
            Enrollment.sequence_id == sequence_id, Enrollment.run == 1)).all())


def _assert_near_percent(held: int, total: int, percent: float) -> None:
    """Within the binomial's central 99.99%: fails about once in 10,000 honest draws."""
    low, high = binom.ppf(0.00005, total, percent / 100), binom.isf(0.00005, total, percent / 100)
    assert low <= held <= high, (held, total, percent, low, high)


def test_held_out_enrollments_walk_every_step_but_are_sent_no_email(client, alice):
    sid = factories.sequence(alice.account_id, WALK, settings={"holdout_percent": 25})
    people = factories.subscribers(alice.account_id, 400)
    with db.session_scope() as s:  # a few take the condition's other branch
        s.execute(update(Subscriber).where(Subscriber.id.in_(people[:20])).values(tags=["vip"]))
    _enroll(client, alice, sid, people)
    groups = _groups(sid)
    held = {sub for sub, out in groups.items() if out}
    treated = set(people) - held
    assert len(groups) == 400 and held and treated
    assert held == {sub for sub in people if is_held_out(sid, sub, 25)}  # exactly the draw, not just a share
    _assert_near_percent(len(held), 400, 25)

    now = utcnow()
    first = run_due(now)
    second = run_due(now + timedelta(seconds=61))

    with db.session_scope() as s:
        messages = s.execute(select(Message.subscriber_id, Message.step_id, Message.status, Message.id)
                             .where(Message.sequence_id == sid)).all()
        enrollments = s.execute(select(Enrollment.subscriber_id, Enrollment.status, Enrollment.state)
                                .where(Enrollment.sequence_id == sid)).all()
        tags = dict(s.execute(select(Subscriber.id, Subscriber.tags).where(Subscriber.id.in_(people))).all())
        hooks = list(s.scalars(select(WebhookDelivery.enrollment_id)
                               .where(WebhookDelivery.account_id == alice.account_id)))
        enrollment_ids = dict(s.execute(select(Enrollment.subscriber_id, Enrollment.id)
                                        .where(Enrollment.sequence_id == sid)).all())
    # Treated: both emails, each queued once; held out: none at all.
    assert sorted(m.id for m in messages) == sorted(first + second)
    assert {m.subscriber_id for m in messages} == treated
    assert len(messages) == 2 * len(treated)
    assert all(m.status == "queued" for m in messages)
    # Everyone walked to the end: the delay, the condition, the action, the webhook.
    assert {e.status for e in enrollments} == {"completed"}
    assert all("walked" in tags[sub] for sub in people)
    assert sorted(hooks) == sorted(enrollment_ids.values())
    for e in enrollments:
        if e.subscriber_id in held:
            assert e.state.get("withheld") == {"0": 1, "5": 1} and not e.state.get("sent")
        else:
            assert not e.state.get("withheld") and set(e.state["sent"]) == {"0", "5"}


def test_a_subscriber_stays_in_its_group_when_enrolled_again_and_a_new_percent_is_for_new_enrollments(client, alice):
    body = {"name": "Drip", "steps": SIMPLE, "settings": {"holdout_percent": 30, "reentry": "always"}}
    sid = client.post(URL, json=body, headers=alice.headers).get_json()["id"]
    assert client.post(f"{URL}/{sid}/activate", headers=alice.headers).status_code == 200
    people = factories.subscribers(alice.account_id, 300)
    _enroll(client, alice, sid, people)
    first = _groups(sid)
    _assert_near_percent(sum(first.values()), 300, 30)
    with db.session_scope() as s:
        s.execute(update(Enrollment).where(Enrollment.sequence_id == sid).values(status="exited",
                                                                                 exit_reason="exit_action"))
    _enroll(client, alice, sid, people)
    with db.session_scope() as s:
        second = dict(s.execute(select(Enrollment.subscriber_id, Enrollment.held_out).where(
            Enrollment.sequence_id == sid, Enrollment.run == 2)).all())
    assert second == first

    # Down to 0%: those already enrolled keep their draw, new ones are all treated.
    body["settings"]["holdout_percent"] = 0
    assert client.put(f"{URL}/{sid}", json=body, headers=alice.headers).status_code == 200
    newcomers = factories.subscribers(alice.account_id, 50, prefix="late")
    _enroll(client, alice, sid, newcomers)
    groups = _groups(sid)
    assert {sub: groups[sub] for sub in people} == first
    assert not any(groups[sub] for sub in newcomers)
    listed = client.get(f"{URL}/{sid}/enrollments?page_size=100", headers=alice.headers).get_json()
    assert len(listed) == 100 and all(row["held_out"] == first[row["subscriber_id"]] for row in listed)
    assert {row["held_out"] for row in listed} == {True, False}


def test_the_lift_is_the_treated_rate_minus_the_held_out_rate_with_newcombes_interval(client, alice, bob):
    settings = {"holdout_percent": 40, "goal": {"event": "purchase", "within_days": 7}, "exit_events": ["upgraded"]}
    sid = factories.sequence(alice.account_id, SIMPLE, settings=settings)
    people = factories.subscribers(alice.account_id, 300)
    _enroll(client, alice, sid, people)
    groups = _groups(sid)
    held = sorted(sub for sub, out in groups.items() if out)
    treated = sorted(sub for sub, out in groups.items() if not out)
    with db.session_scope() as s:
        enrolled_at = s.scalar(select(Enrollment.enrolled_at).where(Enrollment.sequence_id == sid).limit(1))

    def post(subscriber_id: int, name: str, **extra) -> None:
        response = client.post("/api/v1/events", json={"subscriber_id": subscriber_id, "name": name, **extra},
                               headers=alice.headers)
        assert response.status_code == 202, response.get_json()

    # Conversions: a purchase within the week after enrolling (twice for some: one
    # conversion still), or leaving by the exit event.
    bought_treated, bought_held = treated[:len(treated) // 3], held[:len(held) // 6]
    for sub in bought_treated + bought_held + bought_treated[:5]:
        post(sub, "purchase", value=10)
    upgraded = [treated[-1], treated[-2], held[-1]]
    for sub in upgraded:
        post(sub, "upgraded")
    # Not conversions: before the enrollment, after the week, another event.
    post(treated[-3], "purchase", occurred_at=(enrolled_at - timedelta(hours=1)).isoformat())
    post(treated[-4], "purchase", occurred_at=(enrolled_at + timedelta(days=7, hours=1)).isoformat())
    post(held[-2], "purchase", occurred_at=(enrolled_at + timedelta(days=8)).isoformat())
    post(held[-3], "browsed")
    run_due(utcnow())  # the upgraded ones exit by their goal
    with db.session_scope() as s:
        exits = dict(s.execute(select(Enrollment.subscriber_id, Enrollment.exit_reason)
                               .where(Enrollment.sequence_id == sid, Enrollment.status == "exited")).all())
    assert exits == dict.fromkeys(upgraded, "goal:upgraded")
    # Bob's sequence and conversions are his own.
    bob_sid = factories.sequence(bob.account_id, SIMPLE, settings=settings)
    bob_people = factories.subscribers(bob.account_id, 40, prefix="bob")
    _enroll(client, bob, bob_sid, bob_people)
    for sub in bob_people:
        assert client.post("/api/v1/events", json={"subscriber_id": sub, "name": "purchase"},
                           headers=bob.headers).status_code == 202

    response = client.get(f"{URL}/{sid}/holdout", headers=alice.headers)
    assert response.status_code == 200
    body = response.get_json()
    x_t, n_t = len(bought_treated) + 2, len(treated)
    x_h, n_h = len(bought_held) + 1, len(held)
    assert body["status"] == "ok" and body["method"] == "newcombe_hybrid_score"
    assert body["groups"] == [{"group": "treated", "enrollments": n_t, "converted": x_t, "rate": x_t / n_t},
                              {"group": "held_out", "enrollments": n_h, "converted": x_h, "rate": x_h / n_h}]
    assert body["absolute_lift"] == pytest.approx(x_t / n_t - x_h / n_h, abs=1e-12)
    assert body["relative_lift"] == pytest.approx((x_t / n_t) / (x_h / n_h) - 1, rel=1e-12)
    assert body["absolute_lift_interval"] == pytest.approx(list(newcombe_interval(x_t, n_t, x_h, n_h)), abs=1e-12)
    low, high = body["relative_lift_interval"]
    # Katz: exp(log(ratio) ± z·sqrt(1/x_t − 1/n_t + 1/x_h − 1/n_h)) − 1
    se = math.sqrt(1 / x_t - 1 / n_t + 1 / x_h - 1 / n_h)
    ratio = (x_t / n_t) / (x_h / n_h)
    assert (low, high) == pytest.approx((ratio * math.exp(-1.959963984540054 * se) - 1,
                                         ratio * math.exp(1.959963984540054 * se) - 1), rel=1e-9)
    assert body["holdout_percent"] == 40 and body["goal"] == {"event": "purchase", "within_days": 7}

    wider = client.get(f"{URL}/{sid}/holdout?confidence=0.99", headers=alice.headers).get_json()
    assert wider["absolute_lift_interval"][0] < body["absolute_lift_interval"][0]
    assert wider["absolute_lift_interval"][1] > body["absolute_lift_interval"][1]

    table = list(csv.DictReader(io.StringIO(client.get(f"{URL}/{sid}/holdout?format=csv",
                                                       headers=alice.headers).get_data(as_text=True))))
    assert [(r["group"], int(r["enrollments"]), int(r["converted"]), r["status"]) for r in table] == [
        ("treated", n_t, x_t, "ok"), ("held_out", n_h, x_h, "ok")]
    assert float(table[0]["absolute_lift_low"]) == pytest.approx(body["absolute_lift_interval"][0])

    assert client.get(f"{URL}/{sid}/holdout", headers=bob.headers).status_code == 404
    assert client.get(f"{URL}/{bob_sid}/holdout", headers=alice.headers).status_code == 404


def test_too_few_enrollments_or_no_goal_say_so_rather_than_give_a_lift(client, alice):
    sid = factories.sequence(alice.account_id, SIMPLE, settings={"holdout_percent": 50, "goal": {"event": "purchase"}})
    _enroll(client, alice, sid, factories.subscribers(alice.account_id, 20))
    body = client.get(f"{URL}/{sid}/holdout", headers=alice.headers).get_json()
    assert body["status"] == "insufficient_data"
    assert sum(g["enrollments"] for g in body["groups"]) == 20
    assert body["absolute_lift"] is None and body["absolute_lift_interval"] is None

    no_goal = factories.sequence(alice.account_id, SIMPLE, settings={"holdout_percent": 50})
    _enroll(client, alice, no_goal, factories.subscribers(alice.account_id, 200, prefix="ng"))
    body = client.get(f"{URL}/{no_goal}/holdout", headers=alice.headers).get_json()
    assert body["status"] == "no_goal" and body["absolute_lift"] is None
    assert sum(g["enrollments"] for g in body["groups"]) == 200


def test_a_holdout_percent_out_of_range_or_not_a_number_is_a_422_naming_it(client, alice):
    for bad in (51, 50.5, -1, "ten", True):
        response = client.post(URL, json={"name": "H", "steps": SIMPLE, "settings": {"holdout_percent": bad}},
                               headers=alice.headers)
        assert response.status_code == 422, (bad, response.get_json())
        assert "settings.holdout_percent" in response.get_json()["errors"]["json"], response.get_json()
    with db.session_scope() as s:
        assert s.scalar(select(Sequence.id).where(Sequence.account_id == alice.account_id).limit(1)) is None
    for good in (0, 12.5, 50):
        response = client.post(URL, json={"name": "H", "steps": SIMPLE, "settings": {"holdout_percent": good}},
                               headers=alice.headers)
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["settings"].get("holdout_percent", 0) == good
    sid = factories.sequence(alice.account_id, SIMPLE)
    response = client.get(f"{URL}/{sid}/holdout?confidence=0.5", headers=alice.headers)
    assert response.status_code == 422 and "confidence" in response.get_json()["errors"]["query"]
