"""``?format=csv`` on a sequence's analytics, funnel and experiments: the JSON
answer's rows, one per line under a header, with the same numbers."""
from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from models import Step, db
from core.flow import record
from models.base import utcnow
from tests.api.test_experiments_api import _messages as _experiment_messages
from tests.api.test_sequence_analytics import STEPS, _messages

# The rollups fold only events whose transaction has ended (analytics.rollups).
pytestmark = pytest.mark.committing

EXPERIMENT_STEPS = [{"type": "email", "subject": "Welcome", "text": "Hello.", "experiment": {"metric": "opened"},
                     "variants": [{"name": "A", "subject": "Hi"}, {"name": "B", "subject": "Hey"}]}]


def _sequence(client, account, steps) -> tuple[int, list[int]]:
    sid = client.post("/api/v1/email-sequences", json={"name": "Report", "steps": steps},
                      headers=account.headers).get_json()["id"]
    with db.session_scope() as s:
        return sid, list(s.scalars(select(Step.id).where(Step.sequence_id == sid).order_by(Step.position)))


def _csv(client, account, url: str, **query) -> list[dict[str, str]]:
    response = client.get(url, query_string={"format": "csv", **query}, headers=account.headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def _cell(value) -> str:
    """How JSON's value reads in a CSV cell."""
    return "" if value is None else ("true" if value is True else "false" if value is False else str(value))


def test_the_analytics_csv_has_a_row_per_step_and_variant_with_the_json_numbers(client, alice):
    sid, (first, _delay, second) = _sequence(client, alice, STEPS)
    _messages(alice.account_id, sid, first, "A", [["sent", "delivered", "opened", "opened", "clicked"],
                                                  ["sent", "bounced"]])
    _messages(alice.account_id, sid, first, "B", [["sent", "complained"]])
    _messages(alice.account_id, sid, second, None, [["sent", "opened"]])
    url = f"/api/v1/email-sequences/{sid}/analytics"
    steps = client.get(url, headers=alice.headers).get_json()["steps"]

    rows = _csv(client, alice, url)
    assert set(rows[0]) == set(steps[0])
    assert rows == [{key: _cell(value) for key, value in step.items()} for step in steps]
    assert [(r["variant"], r["sent"], r["opened_total"]) for r in rows] == [("A", "2", "2"), ("B", "1", "0"),
                                                                            ("", "1", "1")]


def test_the_daily_analytics_csv_has_a_row_per_day_and_step_led_by_the_day(client, alice):
    sid, (first, _delay, second) = _sequence(client, alice, STEPS)
    _messages(alice.account_id, sid, first, "A", [["sent", "opened"]])
    url = f"/api/v1/email-sequences/{sid}/analytics"
    series = client.get(url, query_string={"interval": "day"}, headers=alice.headers).get_json()["series"]

    rows = _csv(client, alice, url, interval="day")
    assert series and rows == [{"day": day["day"], **{key: _cell(value) for key, value in step.items()}}
                               for day in series for step in day["steps"]]


def test_the_funnel_csv_has_a_row_per_step_with_the_json_numbers(client, alice):
    sid, _steps = _sequence(client, alice, STEPS)
    # Three entered; one waits at 0, one left at 1 by the goal, one completed.
    moves = [(0, "entered", 3), (0, "passed", 2), (1, "entered", 2), (1, "goal", 1), (1, "passed", 1),
             (2, "entered", 1), (2, "passed", 1), (3, "completed", 1)]
    with db.session_scope() as s:
        record(s, [(alice.account_id, sid, p, kind, n) for p, kind, n in moves], utcnow())
    url = f"/api/v1/email-sequences/{sid}/funnel"
    steps = client.get(url, headers=alice.headers).get_json()["steps"]

    rows = _csv(client, alice, url)
    assert rows == [{key: _cell(value) for key, value in step.items()} for step in steps]
    assert [(r["step"], r["entered"], r["exited_goal"]) for r in rows] == [("0", "3", "0"), ("1", "2", "1"),
                                                                           ("2", "1", "0")]


def test_the_experiments_csv_has_a_row_per_variant_with_its_experiment_and_interval(client, alice):
    sid, (first,) = _sequence(client, alice, EXPERIMENT_STEPS)
    _experiment_messages(alice.account_id, sid, first, "A", 400, 40)
    _experiment_messages(alice.account_id, sid, first, "B", 400, 120)
    url = f"/api/v1/email-sequences/{sid}/experiments"
    (experiment,) = client.get(url, headers=alice.headers).get_json()

    rows = _csv(client, alice, url)
    assert [(r["step"], r["metric"], r["status"], r["winner"], r["variant"], r["sent"], r["successes"], r["rate"])
            for r in rows] == [("0", "opened", "decided", "B", "A", "400", "40", "0.1"),
                               ("0", "opened", "decided", "B", "B", "400", "120", "0.3")]
    for row, variant in zip(rows, experiment["variants"]):
        low, high = variant["confidence_interval"] or (None, None)
        assert (row["confidence_interval_low"], row["confidence_interval_high"]) == (_cell(low), _cell(high))
        assert (row["lift"], row["difference"], row["p_value_always_valid"]) == (
            _cell(variant["lift"]), _cell(variant["difference"]), _cell(variant["p_value_always_valid"]))
    assert float(rows[1]["confidence_interval_low"]) > 0


@pytest.mark.parametrize("endpoint", ["analytics", "funnel", "experiments"])
def test_a_format_other_than_json_or_csv_is_a_422_naming_format(client, alice, endpoint):
    sid, _steps = _sequence(client, alice, STEPS)
    response = client.get(f"/api/v1/email-sequences/{sid}/{endpoint}", query_string={"format": "xml"},
                          headers=alice.headers)
    assert response.status_code == 422
    assert "format" in response.get_json()["errors"]["query"]


@pytest.mark.parametrize("endpoint", ["analytics", "funnel", "experiments"])
def test_another_accounts_sequence_is_a_404_in_csv_too(client, alice, bob, endpoint):
    sid, _steps = _sequence(client, alice, STEPS)
    response = client.get(f"/api/v1/email-sequences/{sid}/{endpoint}", query_string={"format": "csv"},
                          headers=bob.headers)
    assert response.status_code == 404


@pytest.mark.parametrize("endpoint", ["analytics", "funnel", "experiments"])
def test_the_json_answer_stays_the_default(client, alice, endpoint):
    sid, _steps = _sequence(client, alice, STEPS)
    response = client.get(f"/api/v1/email-sequences/{sid}/{endpoint}", headers=alice.headers)
    assert response.status_code == 200 and response.mimetype == "application/json"
