"""GET /email-sequences/{id}/experiments: each email step with an experiment, its
variants' sends and unique successes from the rollups, and the decision on them."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from models import Event, Message, Step, db
from models.base import utcnow
from tests.support import factories

AB = [{"name": "A", "subject": "Hi"}, {"name": "B", "subject": "Hey"}]
STEPS = [{"type": "email", "subject": "Welcome", "text": "Hello.", "variants": AB,
          "experiment": {"metric": "opened"}},
         {"type": "delay", "seconds": 60},
         {"type": "email", "subject": "Day two", "text": "Still here?", "variants": AB}]

# The rollups fold only events whose transaction has ended (analytics.rollups).
pytestmark = pytest.mark.committing


def _sequence(client, account, steps=STEPS, **extra) -> tuple[int, list[int]]:
    sid = client.post("/api/v1/email-sequences", json={"name": "Trial", "steps": steps, **extra},
                      headers=account.headers).get_json()["id"]
    with db.session_scope() as s:
        return sid, list(s.scalars(select(Step.id).where(Step.sequence_id == sid).order_by(Step.position)))


def _messages(account_id: int, sequence_id: int, step_id: int, variant: str, sent: int, with_event: int,
              event: str = "opened", sent_events: bool = True) -> None:
    """``sent`` past messages of the variant, the first ``with_event`` of them with
    ``event`` (twice, so a second one is seen not to count twice). Their keys are no
    engine-made message's (``{enrollment}:{step}:{variant}:{visit}``), and a second
    call with another ``sent`` gets subscribers of its own."""
    now = utcnow()
    people = factories.subscribers(account_id, sent, prefix=f"x{step_id}{variant}{sent}-")
    with db.session_scope() as s:
        messages = [Message(account_id=account_id, subscriber_id=person, sequence_id=sequence_id, step_id=step_id,
                            variant=variant, idempotency_key=f"past:{step_id}:{variant}:{sent}:{n}",
                            status="sent", sent_at=now - timedelta(minutes=5), to_email=f"p{n}@example.test")
                    for n, person in enumerate(people)]
        s.add_all(messages)
        s.flush()
        for n, message in enumerate(messages):
            names = (["sent"] if sent_events else []) + ([event, event] if n < with_event else [])
            s.add_all(Event(account_id=account_id, subscriber_id=message.subscriber_id, message_id=message.id,
                            name=name, dedup_key=f"{name}:{message.id}:{i}", occurred_at=now)
                      for i, name in enumerate(names))


def test_a_variant_that_clearly_opens_more_is_the_declared_winner_with_its_exact_counts(client, alice):
    sid, (first, _delay, second) = _sequence(client, alice)
    _messages(alice.account_id, sid, first, "A", 400, 40)
    _messages(alice.account_id, sid, first, "B", 400, 120)
    _messages(alice.account_id, sid, second, "A", 400, 40)

    response = client.get(f"/api/v1/email-sequences/{sid}/experiments", headers=alice.headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [(e["step"], e["metric"], e["status"], e["winner"]) for e in body] == [(0, "opened", "decided", "B")]
    assert [(v["name"], v["sent"], v["successes"], v["rate"]) for v in body[0]["variants"]] == [
        ("A", 400, 40, 0.1), ("B", 400, 120, 0.3)]
    assert body[0]["variants"][1]["confidence_interval"][0] > 0
    assert body[0]["as_of"] is not None


def test_equal_small_counts_leave_the_experiment_running(client, alice):
    sid, (first, *_rest) = _sequence(client, alice)
    _messages(alice.account_id, sid, first, "A", 30, 6)
    _messages(alice.account_id, sid, first, "B", 30, 6)
    body = client.get(f"/api/v1/email-sequences/{sid}/experiments", headers=alice.headers).get_json()
    assert [(e["status"], e["winner"]) for e in body] == [("running", None)]
    assert [(v["sent"], v["successes"]) for v in body[0]["variants"]] == [(30, 6), (30, 6)]


def test_an_experiment_on_conversions_counts_messages_that_led_to_a_goal(client, alice):
    steps = [{**STEPS[0], "experiment": {"metric": "converted", "min_per_variant": 5}}]
    sid, (first,) = _sequence(client, alice, steps, settings={"goal": {"event": "purchase"}})
    _messages(alice.account_id, sid, first, "A", 10, 3, event="purchase")
    body = client.get(f"/api/v1/email-sequences/{sid}/experiments", headers=alice.headers).get_json()
    assert [(v["name"], v["sent"], v["successes"]) for v in body[0]["variants"]] == [("A", 10, 3), ("B", 0, 0)]


def test_opens_of_messages_whose_sent_event_is_missing_still_answer_200(client, alice):
    sid, (first, *_rest) = _sequence(client, alice)
    _messages(alice.account_id, sid, first, "A", 5, 5, sent_events=False)
    response = client.get(f"/api/v1/email-sequences/{sid}/experiments", headers=alice.headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [(v["sent"], v["successes"]) for v in response.get_json()[0]["variants"]] == [(5, 5), (0, 0)]


def test_a_sequence_without_experiments_lists_none(client, alice):
    sid, _steps = _sequence(client, alice, STEPS[1:])
    response = client.get(f"/api/v1/email-sequences/{sid}/experiments", headers=alice.headers)
    assert response.status_code == 200 and response.get_json() == []


def test_another_accounts_sequence_is_a_404_and_no_credentials_a_401(client, alice, bob):
    sid, _steps = _sequence(client, alice)
    assert client.get(f"/api/v1/email-sequences/{sid}/experiments", headers=bob.headers).status_code == 404
    assert client.get(f"/api/v1/email-sequences/{sid}/experiments").status_code == 401
