"""GET /email-sequences/{id}/analytics: each email step and variant with its
messages' events counted, each message once per name, whatever the source."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Event, Message, Step, db
from core.flow import record
from models.base import utcnow
from tests.support import factories

STEPS = [{"type": "email", "subject": "Welcome", "text": "Hello.",
          "variants": [{"name": "A", "subject": "Hi"}, {"name": "B", "subject": "Hey"}]},
         {"type": "delay", "seconds": 60},
         {"type": "email", "subject": "Day two", "text": "Still here?"}]

# The rollups fold only events whose transaction has ended (analytics.rollups): a test
# rolled back in one open transaction would never see its events folded.
pytestmark = pytest.mark.committing


def _messages(account_id: int, sequence_id: int, step_id: int, variant: str | None, events: list[list[str]]) -> None:
    """One message per entry of ``events``, with those events (names may repeat)."""
    now = utcnow()
    people = factories.subscribers(account_id, len(events), prefix=f"s{step_id}{variant or ''}-")
    with db.session_scope() as s:
        for n, (person, names) in enumerate(zip(people, events)):
            message = Message(account_id=account_id, subscriber_id=person, sequence_id=sequence_id, step_id=step_id,
                              variant=variant, idempotency_key=f"{sequence_id}:{step_id}:{variant}:{n}",
                              status="sent", to_email=f"p{n}@example.test")
            s.add(message)
            s.flush()
            s.add_all(Event(account_id=account_id, subscriber_id=person, message_id=message.id, name=name,
                            dedup_key=f"{name}:{message.id}:{i}", occurred_at=now)
                      for i, name in enumerate(names))


def test_each_email_step_and_variant_counts_its_messages_once_per_event(client, alice, bob):
    sid = client.post("/api/v1/email-sequences", json={"name": "Onboarding", "steps": STEPS},
                      headers=alice.headers).get_json()["id"]
    with db.session_scope() as s:
        first, _delay, second = (step.id for step in s.scalars(select(Step).where(Step.sequence_id == sid)
                                                               .order_by(Step.position)))
    _messages(alice.account_id, sid, first, "A", [["sent", "delivered", "opened", "opened", "clicked"],
                                                  ["sent", "bounced"], ["sent", "delivered", "opened"]])
    _messages(alice.account_id, sid, first, "B", [["sent", "complained", "unsubscribed"], ["sent", "clicked"]])
    _messages(alice.account_id, sid, second, None, [["sent", "opened"], ["sent", "signed_up"]])
    other = factories.sequence(alice.account_id, [{"type": "email", "subject": "x", "text": "y"}])
    with db.session_scope() as s:
        other_step = s.scalar(select(Step.id).where(Step.sequence_id == other))
    _messages(alice.account_id, other, other_step, None, [["sent", "opened"]])

    response = client.get(f"/api/v1/email-sequences/{sid}/analytics", headers=alice.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["sequence_id"] == sid
    zero = dict.fromkeys(("sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed",
                          "opened_total", "clicked_total", "converted", "conversions"), 0)
    assert body["steps"] == [
        {"step_id": first, "position": 0, "step": 0, "variant": "A", **zero, "revenue": 0.0,
         "sent": 3, "delivered": 2, "opened": 2, "clicked": 1, "bounced": 1, "opened_total": 3, "clicked_total": 1},
        {"step_id": first, "position": 0, "step": 0, "variant": "B", **zero, "revenue": 0.0,
         "sent": 2, "clicked": 1, "complained": 1, "unsubscribed": 1, "clicked_total": 1},
        {"step_id": second, "position": 2, "step": 2, "variant": None, **zero, "revenue": 0.0,
         "sent": 2, "opened": 1, "opened_total": 1},
    ]
    assert body["as_of"] is not None
    assert client.get(f"/api/v1/email-sequences/{sid}/analytics", headers=bob.headers).status_code == 404


def test_a_sequence_nothing_was_sent_for_answers_zeros_for_each_email(client, alice):
    sid = client.post("/api/v1/email-sequences", json={"name": "Quiet", "steps": STEPS[2:]},
                      headers=alice.headers).get_json()["id"]
    steps = client.get(f"/api/v1/email-sequences/{sid}/analytics", headers=alice.headers).get_json()["steps"]
    assert [(s["position"], s["variant"], s["sent"], s["opened"]) for s in steps] == [(0, None, 0, 0)]


def test_a_goal_without_an_event_or_with_days_out_of_range_is_a_422_naming_the_field(client, alice):
    for goal, field in (({"within_days": 7}, "settings.goal.event"), ({"event": "purchase", "within_days": 0},
                                                                       "settings.goal.within_days"),
                        ("purchase", "settings.goal"), ({"event": "purchase", "days": 7}, "settings.goal.days")):
        response = client.post("/api/v1/email-sequences", json={"name": "G", "steps": STEPS[2:],
                                                                "settings": {"goal": goal}}, headers=alice.headers)
        assert response.status_code == 422 and field in str(response.get_json()), (goal, response.get_json())
    created = client.post("/api/v1/email-sequences", json={"name": "G", "steps": STEPS[2:],
                                                           "settings": {"goal": {"event": "purchase"}}},
                          headers=alice.headers).get_json()
    assert created["settings"]["goal"] == {"event": "purchase", "within_days": 7}


def test_a_bad_date_or_interval_is_a_422_naming_the_parameter(client, alice):
    sid = client.post("/api/v1/email-sequences", json={"name": "Q", "steps": STEPS[2:]},
                      headers=alice.headers).get_json()["id"]
    for query, field in (("from=yesterday", "from"), ("interval=week", "interval"),
                         ("from=2026-02-02&to=2026-02-01", "from")):
        response = client.get(f"/api/v1/email-sequences/{sid}/analytics?{query}", headers=alice.headers)
        assert response.status_code == 422 and field in str(response.get_json()), (query, response.get_json())


def test_the_funnel_counts_the_recorded_moves_at_each_step_and_who_waits_there(client, alice, bob):
    steps = [{"type": "email", "subject": "One", "text": "1"}, {"type": "delay", "seconds": 60},
             {"type": "email", "subject": "Two", "text": "2"}]
    sid = client.post("/api/v1/email-sequences", json={"name": "F", "steps": steps},
                      headers=alice.headers).get_json()["id"]
    now = utcnow()
    # (position, kind, n) as the engine records them: 10 entered 0, one failed there;
    # at 1, a goal exit, an unsubscribe, two went on and one was sent back to 0 by a
    # goto (it waits there again), three wait; at 2, an exit branch, two completed
    # (one of them twice: a second lap), one waits.
    moves = [(0, "entered", 10), (0, "failed", 1), (0, "passed", 8), (1, "entered", 8), (1, "goal", 1),
             (1, "passed", 3), (0, "entered", 1), (2, "entered", 2), (1, "left", 1), (2, "exit", 1),
             (2, "passed", 2), (2, "entered", 2), (3, "completed", 2)]
    with db.session_scope() as s:
        record(s, [(alice.account_id, sid, p, kind, n) for p, kind, n in moves], now)
        record(s, [(bob.account_id, factories.sequence(bob.account_id, steps), 0, "entered", 5)], now)
    body = client.get(f"/api/v1/email-sequences/{sid}/funnel", headers=alice.headers).get_json()
    assert [(r["step"], r["entered"], r["passed"], r["exited"], r["exited_goal"], r["exited_condition"],
             r["exited_unsubscribed"], r["failed"], r["waiting"]) for r in body["steps"]] == [
        (0, 11, 8, 0, 0, 0, 0, 1, 2),
        (1, 8, 3, 2, 1, 1, 1, 0, 3),
        (2, 4, 2, 1, 0, 1, 0, 0, 1),
    ]
    assert client.get(f"/api/v1/email-sequences/{sid}/funnel", headers=bob.headers).status_code == 404
