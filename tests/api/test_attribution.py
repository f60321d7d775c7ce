"""GET /analytics/attribution: each conversion's revenue credited to the sequence
emails that touched its subscriber in the window before it, under last touch,
first touch and linear, adding up to the cent (analytics.attribution)."""
from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from models import Account, Base, Event, Message, Step, db
from models.base import utcnow
from tests.support import factories

URL = "/api/v1/analytics/attribution"
GOAL = {"goal": {"event": "purchase", "within_days": 7}}
EMAILS = [{"type": "email", "subject": "One", "text": "1"}, {"type": "email", "subject": "Two", "text": "2"}]


def _steps(sequence_id: int) -> list[int]:
    with db.session_scope() as s:
        return list(s.scalars(select(Step.id).where(Step.sequence_id == sequence_id).order_by(Step.position)))


def _sent(account_id: int, subscriber_id: int, sequence_id: int, step_id: int, at: datetime,
          clicked_at: datetime | None = None) -> int:
    with db.session_scope() as s:
        message = Message(account_id=account_id, subscriber_id=subscriber_id, sequence_id=sequence_id,
                          step_id=step_id, idempotency_key=f"{subscriber_id}:{step_id}:{at.isoformat()}",
                          status="sent", to_email="p@example.test", sent_at=at)
        s.add(message)
        s.flush()
        if clicked_at is not None:
            s.add(Event(account_id=account_id, subscriber_id=subscriber_id, message_id=message.id, name="clicked",
                        dedup_key=f"clicked:{message.id}", occurred_at=clicked_at))
        return message.id


def _event(account_id: int, subscriber_id: int, at: datetime, value: float | None, name: str = "purchase") -> None:
    with db.session_scope() as s:
        s.add(Event(account_id=account_id, subscriber_id=subscriber_id, name=name, value=value, occurred_at=at,
                    source="api"))


@pytest.fixture()
def journey(alice):
    """Alice's subscriber sent step 0 and step 1 of Onboarding, then step 0 of
    Upsell, then a purchase of 100.00."""
    now = utcnow()
    onboarding = factories.sequence(alice.account_id, EMAILS, settings=GOAL)
    upsell = factories.sequence(alice.account_id, EMAILS, settings=GOAL)
    (person,) = factories.subscribers(alice.account_id, 1, prefix="buyer")
    o0, o1 = _steps(onboarding)
    u0, _u1 = _steps(upsell)
    _sent(alice.account_id, person, onboarding, o0, now - timedelta(days=3))
    _sent(alice.account_id, person, onboarding, o1, now - timedelta(days=2), clicked_at=now - timedelta(hours=30))
    _sent(alice.account_id, person, upsell, u0, now - timedelta(days=1))
    _event(alice.account_id, person, now, 100.00)
    return {"now": now, "person": person, "rows": [(onboarding, 0, o0), (onboarding, 1, o1), (upsell, 0, u0)]}


def _credited(body: dict) -> list[tuple[int, int, int, float, str]]:
    return [(r["sequence_id"], r["step"], r["step_id"], r["conversions"], str(Decimal(str(r["revenue"]))))
            for r in body["rows"]]


@pytest.mark.parametrize("model, shares, revenues", [
    ("last_touch", [0, 0, 1], ["0.0", "0.0", "100.0"]),
    ("first_touch", [1, 0, 0], ["100.0", "0.0", "0.0"]),
    ("linear", [1 / 3, 1 / 3, 1 / 3], ["33.33", "33.33", "33.34"]),
])
def test_each_model_credits_the_purchase_to_its_touches_and_the_revenue_adds_up(client, alice, journey, model,
                                                                                 shares, revenues):
    body = client.get(URL, query_string={"model": model}, headers=alice.headers).get_json()
    assert _credited(body) == [(*row, round(share, 6), revenue)
                               for row, share, revenue in zip(journey["rows"], shares, revenues)]
    assert sum(Decimal(str(r["revenue"])) for r in body["rows"]) == Decimal("100.00")
    assert body["totals"] == {"conversions": 1, "revenue": 100.0, "attributed_conversions": 1,
                              "attributed_revenue": 100.0, "unattributed_conversions": 0,
                              "unattributed_revenue": 0.0}


def test_the_model_defaults_to_last_touch_and_a_short_window_leaves_out_the_older_emails(client, alice, journey):
    body = client.get(URL, query_string={"window_days": 2, "model": "first_touch"}, headers=alice.headers).get_json()
    assert [(r["step_id"], r["conversions"]) for r in body["rows"]] == [(journey["rows"][1][2], 1.0),
                                                                        (journey["rows"][2][2], 0.0)]
    assert client.get(URL, headers=alice.headers).get_json()["model"] == "last_touch"


def test_clicked_touches_are_only_the_emails_clicked_before_the_conversion(client, alice, journey):
    body = client.get(URL, query_string={"touch": "clicked", "model": "linear"}, headers=alice.headers).get_json()
    assert _credited(body) == [(*journey["rows"][1], 1.0, "100.0")]


def test_a_conversion_with_no_email_in_the_window_is_unattributed(client, alice, journey):
    _event(alice.account_id, journey["person"], journey["now"] + timedelta(days=30), 25.5)
    body = client.get(URL, query_string={"model": "linear"}, headers=alice.headers).get_json()
    assert sum(Decimal(str(r["revenue"])) for r in body["rows"]) == Decimal("100.00")
    assert body["totals"] == {"conversions": 2, "revenue": 125.5, "attributed_conversions": 1,
                              "attributed_revenue": 100.0, "unattributed_conversions": 1,
                              "unattributed_revenue": 25.5}


def test_another_accounts_conversions_and_emails_are_never_counted(client, alice, bob, journey):
    assert client.get(URL, headers=bob.headers).get_json()["rows"] == []
    # Bob's purchase by Alice's subscriber id (a forged event) touches nothing of Alice's.
    _event(bob.account_id, journey["person"], journey["now"], 500.0)
    sequence = factories.sequence(bob.account_id, EMAILS, settings=GOAL)
    (person,) = factories.subscribers(bob.account_id, 1, prefix="bobs")
    _sent(bob.account_id, person, sequence, _steps(sequence)[0], journey["now"] - timedelta(days=1))
    _event(bob.account_id, person, journey["now"], 7.0)
    body = client.get(URL, headers=alice.headers).get_json()
    assert body["totals"]["revenue"] == 100.0
    assert {r["sequence_id"] for r in body["rows"]} == {row[0] for row in journey["rows"]}
    bobs = client.get(URL, headers=bob.headers).get_json()
    assert [(r["sequence_id"], r["revenue"]) for r in bobs["rows"]] == [(sequence, 7.0)]
    assert bobs["totals"]["unattributed_revenue"] == 500.0


def test_the_csv_answer_has_the_header_and_the_same_numbers(client, alice, journey):
    response = client.get(URL, query_string={"model": "linear", "format": "csv"}, headers=alice.headers)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["sequence_id", "step", "step_id", "conversions", "revenue"]
    assert rows[1:] == [[str(s), str(p), str(i), "0.333333", revenue]
                        for (s, p, i), revenue in zip(journey["rows"], ["33.33", "33.33", "33.34"])]


@pytest.mark.parametrize("query, field", [
    ({"model": "U_shaped"}, "model"), ({"window_days": 0}, "window_days"), ({"window_days": 366}, "window_days"),
    ({"window_days": "week"}, "window_days"), ({"touch": "opened"}, "touch"), ({"format": "xml"}, "format"),
    ({"from": "2026-02-02", "to": "2026-02-01"}, "from"), ({"to": "9999-12-31"}, "to"),
    ({"from": "0001-01-01"}, "from"),
    ({"event": "pur\x00chase"}, "event"), ({"event": "x" * 101}, "event"),
])
def test_a_bad_query_value_is_a_422_naming_the_field(client, alice, query, field):
    response = client.get(URL, query_string=query, headers=alice.headers)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["query"]


def test_without_credentials_it_is_a_401(client):
    assert client.get(URL).status_code == 401


def test_only_the_named_event_counts_when_one_is_given_and_the_period_bounds_the_conversions(client, alice, journey):
    _event(alice.account_id, journey["person"], journey["now"], 9.99, name="signed_up")
    named = client.get(URL, query_string={"event": "signed_up"}, headers=alice.headers).get_json()
    assert named["totals"]["revenue"] == 9.99
    tomorrow = (journey["now"] + timedelta(days=1)).date().isoformat()
    assert client.get(URL, query_string={"from": tomorrow}, headers=alice.headers).get_json()["totals"][
        "conversions"] == 0


@pytest.mark.parametrize("seed", range(4))
def test_for_random_conversions_and_touches_every_model_adds_up_to_the_covered_revenue(client, alice, seed):
    rng = random.Random(seed)
    now = utcnow().replace(microsecond=0)
    sequences = [factories.sequence(alice.account_id, EMAILS, settings=GOAL) for _ in range(2)]
    steps = [(sequence, step) for sequence in sequences for step in _steps(sequence)]
    people = factories.subscribers(alice.account_id, 6, prefix=f"r{seed}-")
    sends: dict[int, list[datetime]] = {person: [] for person in people}
    for n in range(30):
        person = rng.choice(people)
        sequence, step = rng.choice(steps)
        at = now - timedelta(days=rng.randint(0, 20), minutes=n)
        _sent(alice.account_id, person, sequence, step, at)
        sends[person].append(at)
    covered = Decimal(0)
    count = 0
    for _ in range(15):
        person = rng.choice(people)
        at = now - timedelta(days=rng.randint(0, 15), hours=rng.randint(0, 23))
        value = rng.choice([None, 0.01, 100.0, 19.99, rng.randint(1, 99_999) / 100])
        _event(alice.account_id, person, at, value)
        if any(at - timedelta(days=5) <= sent <= at for sent in sends[person]):
            covered += Decimal(str(value or 0))
            count += 1
    for model in ("last_touch", "first_touch", "linear"):
        body = client.get(URL, query_string={"model": model, "window_days": 5}, headers=alice.headers).get_json()
        assert sum(Decimal(str(r["revenue"])) for r in body["rows"]) == covered
        assert round(sum(r["conversions"] for r in body["rows"]), 3) == count
        assert body["totals"]["attributed_conversions"] == count


@contextmanager
def _embedded() -> Iterator[tuple[Session, Account, datetime]]:
    """A session on a fresh in-memory SQLite database (the embedded mode's, ``make
    run``) with the schema and one account, and a moment with microseconds."""
    now = datetime(2026, 12, 6, 12, 0, 0, 250_000, tzinfo=utcnow().tzinfo)
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        account = Account(name="Embedded", from_email="e@sender.test")
        s.add(account)
        s.flush()
        yield s, account, now


def test_on_the_embedded_sqlite_database_the_models_window_and_period_agree_with_postgresql():
    """The embedded mode (``make run``) keeps its times as zone-less text: the same
    join must find the same touches there."""
    from analytics.attribution import attribute
    from models import Sequence, Subscriber

    with _embedded() as (s, account, now):
        sequence = Sequence(account_id=account.id, name="S", status="active", settings=GOAL)
        sequence.steps = [Step(position=i, type="email", config={}) for i in range(3)]
        person = Subscriber(account_id=account.id, email="p@example.test")
        s.add_all([sequence, person])
        s.flush()
        s.add_all(Message(account_id=account.id, subscriber_id=person.id, sequence_id=sequence.id, step_id=step.id,
                          idempotency_key=str(step.id), status="sent", to_email="p@example.test",
                          sent_at=now - timedelta(days=3 - step.position)) for step in sequence.steps)
        s.add_all([Event(account_id=account.id, subscriber_id=person.id, name="purchase", value=100.0, occurred_at=now),
                   Event(account_id=account.id, subscriber_id=person.id, name="purchase", value=5.0,
                         occurred_at=now + timedelta(days=40))])
        s.flush()
        linear = attribute(s, account.id, "linear", 7)
        assert [str(r["revenue"]) for r in linear["rows"]] == ["33.33", "33.33", "33.34"]
        assert str(linear["totals"]["unattributed_revenue"]) == "5.00"
        assert [r["step"] for r in attribute(s, account.id, "first_touch", 2)["rows"] if r["conversions"]] == [1]
        assert attribute(s, account.id, "linear", 7, start=now + timedelta(microseconds=1))["totals"]["revenue"] == 5
        assert attribute(s, account.id, "linear", 7, end=now)["totals"]["conversions"] == 0
        assert attribute(s, account.id, "linear", 7, start=now, end=now + timedelta(days=1))["totals"][
            "conversions"] == 1


def test_on_the_embedded_sqlite_database_the_rollups_as_of_is_stored_as_every_other_time():
    """``as_of`` went in as untyped text ('...+00:00' on SQLite), so in SQL it never
    equalled the same moment stored by the ORM, and sorted after it."""
    from analytics.rollups import fold_chunk

    with _embedded() as (s, account, now):
        s.add(Event(account_id=account.id, name="purchase", occurred_at=now))
        s.flush()
        at_as_of = "SELECT count(*) FROM rollup_watermarks w JOIN events e ON e.account_id = w.account_id" \
                   " WHERE e.occurred_at = w.as_of"
        assert fold_chunk(s, account.id, now).events == 1
        assert s.execute(text(at_as_of)).scalar() == 1
        assert fold_chunk(s, account.id, now).caught_up
        assert s.execute(text(at_as_of)).scalar() == 1
