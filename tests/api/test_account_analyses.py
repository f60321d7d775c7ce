"""GET /analytics/cohorts, /rfm and /ltv: answers the analytics pool computed and
cached (analytics.account_analyses), checked against small histories worked out by
hand here; 202 before anything is computed; CSV and SVG; Bob's data never in
Alice's answers."""
from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import select

from analytics import account_data, btyd
from analytics.account_analyses import claim_analysis, request_analysis, stale_analyses
from models import AccountAnalysis, Event, Subscriber, db
from models.base import utcnow
from tasks.analytics import compute_account_analysis
from tests.support import factories
from tests.support.waiting import wait_for

SVG = "{http://www.w3.org/2000/svg}"


def _monday(weeks_ago: int, now: datetime) -> datetime:
    start = account_data.monday(account_data.week_of(now) - weeks_ago)
    return datetime(start.year, start.month, start.day, tzinfo=timezone.utc)


def _subscriber(account_id: int, email: str, created_at: datetime) -> int:
    with db.session_scope() as s:
        row = Subscriber(account_id=account_id, email=email, created_at=created_at)
        s.add(row)
        s.flush()
        return row.id


def _events(account_id: int, subscriber_id: int, name: str, times: list[datetime], value: float | None = None) -> None:
    with db.session_scope() as s:
        s.add_all(Event(account_id=account_id, subscriber_id=subscriber_id, name=name, occurred_at=at, value=value)
                  for at in times)


def _computed(client, tenant, kind: str) -> dict:
    assert compute_account_analysis(tenant.account_id, kind) is True
    response = client.get(f"/api/v1/analytics/{kind}", headers=tenant.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture()
def engagement(alice, bob):
    """Alice: cohort A (two weeks ago) of four, cohort B (last week) of two.
    A1 opens twice in week 0 and clicks in week 1; A2 clicks in week 1; A3 only
    buys in week 1 (not engagement); A4 does nothing. B1 opens in week 0.
    Bob: one subscriber in Alice's cohort A week, opening every week."""
    now = utcnow()
    a_start, b_start = _monday(2, now), _monday(1, now)
    hour = timedelta(hours=1)
    a1, a2, a3, _a4 = (_subscriber(alice.account_id, f"a{i}@example.test", a_start + hour) for i in range(1, 5))
    b1, _b2 = (_subscriber(alice.account_id, f"b{i}@example.test", b_start + hour) for i in range(1, 3))
    _events(alice.account_id, a1, "opened", [a_start + 2 * hour, a_start + timedelta(days=3)])
    _events(alice.account_id, a1, "clicked", [b_start + 2 * hour])
    _events(alice.account_id, a2, "clicked", [b_start + timedelta(days=6)])
    _events(alice.account_id, a3, "purchase", [b_start + 2 * hour], value=20.0)
    _events(alice.account_id, b1, "opened", [b_start + 3 * hour])
    intruder = _subscriber(bob.account_id, "a1@example.test", a_start + hour)
    _events(bob.account_id, intruder, "opened", [a_start + 2 * hour, b_start + 2 * hour])
    return {"now": now, "a": a_start.date().isoformat(), "b": b_start.date().isoformat(),
            "this": _monday(0, now).date().isoformat()}


def test_a_first_get_asks_the_analytics_pool_and_answers_202_without_computing(client, alice, engagement):
    response = client.get("/api/v1/analytics/cohorts", headers=alice.headers)
    assert response.status_code == 202
    assert response.get_json() == {"kind": "cohorts", "status": "queued", "computed_at": None, "error": None}
    with db.session_scope() as s:
        row = s.scalar(select(AccountAnalysis).where(AccountAnalysis.account_id == alice.account_id))
        assert (row.kind, row.status, row.result) == ("cohorts", "queued", None)
    assert client.get("/api/v1/analytics/cohorts", headers=alice.headers).status_code == 202


def test_the_cohort_table_gives_each_signup_week_its_share_engaged_per_later_week(client, alice, engagement):
    body = _computed(client, alice, "cohorts")
    assert body["status"] == "ready" and body["computed_at"]
    assert body["engaged_events"] == ["opened", "clicked"]
    assert body["subscribers"] == 6
    assert body["cohorts"] == [
        {"cohort": engagement["a"], "subscribers": 4, "engaged": [1, 2, 0], "shares": [0.25, 0.5, 0.0]},
        {"cohort": engagement["b"], "subscribers": 2, "engaged": [1, 0], "shares": [0.5, 0.0]},
    ]


def test_another_accounts_analyses_are_its_own(client, alice, bob, engagement):
    _computed(client, alice, "cohorts")
    assert client.get("/api/v1/analytics/cohorts", headers=bob.headers).status_code == 202
    body = _computed(client, bob, "cohorts")
    assert body["cohorts"] == [{"cohort": engagement["a"], "subscribers": 1, "engaged": [1, 1, 0],
                                "shares": [1.0, 1.0, 0.0]}]


def test_the_cohort_table_as_csv_has_a_row_per_cohort_and_week(client, alice, engagement):
    _computed(client, alice, "cohorts")
    response = client.get("/api/v1/analytics/cohorts?format=csv", headers=alice.headers)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    a, b = engagement["a"], engagement["b"]
    assert rows == [["cohort", "subscribers", "week", "engaged", "share"],
                    [a, "4", "0", "1", "0.25"], [a, "4", "1", "2", "0.5"], [a, "4", "2", "0", "0.0"],
                    [b, "2", "0", "1", "0.5"], [b, "2", "1", "0", "0.0"]]


def test_the_cohort_table_as_svg_is_a_heatmap_with_a_cell_per_cohort_and_week(client, alice, engagement):
    _computed(client, alice, "cohorts")
    response = client.get("/api/v1/analytics/cohorts?format=svg", headers=alice.headers)
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    root = ET.fromstring(response.get_data())
    assert root.tag == f"{SVG}svg"
    assert list(root.iter(f"{SVG}script")) == []
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "cohort"]
    assert [g.get("data-cohort") for g in groups] == [engagement["a"], engagement["b"]]
    titles = [[r.find(f"{SVG}title").text for r in g.iter(f"{SVG}rect")] for g in groups]
    assert titles == [[f"{engagement['a']}, week 0: 25.0% (1 of 4)", f"{engagement['a']}, week 1: 50.0% (2 of 4)",
                       f"{engagement['a']}, week 2: 0.0% (0 of 4)"],
                      [f"{engagement['b']}, week 0: 50.0% (1 of 2)", f"{engagement['b']}, week 1: 0.0% (0 of 2)"]]


@pytest.fixture()
def shop(alice, bob):
    """Five of Alice's customers and one subscriber who never bought, all signed up
    60 days ago. (last purchase days ago, purchases, value each):
    c1 (1, 5, 10), c2 (10, 4, 10), c3 (20, 3, 30), c4 (30, 1, 100), c5 (40, 2, 5).
    By hand: R scores c5..c1 = 1..5; F: c4 1, c5 2, c3 3, c2 4, c1 5; monetary totals
    50, 40, 90, 100, 10 give M: c5 1, c2 2, c1 3, c3 4, c4 5. Segments on (R, F):
    c1 (5,5) champions, c2 (4,4) loyal, c3 (3,3) need_attention, c4 (2,1) and
    c5 (1,2) hibernating. Bob has one big customer."""
    now = utcnow()
    signup = now - timedelta(days=60)
    people = {}
    for name, days, count, value in (("c1", 1, 5, 10.0), ("c2", 10, 4, 10.0), ("c3", 20, 3, 30.0),
                                     ("c4", 30, 1, 100.0), ("c5", 40, 2, 5.0)):
        people[name] = _subscriber(alice.account_id, f"{name}@example.test", signup)
        last = now - timedelta(days=days, hours=1)
        _events(alice.account_id, people[name], "purchase", [last - timedelta(days=k) for k in range(count)], value)
    _subscriber(alice.account_id, "browser@example.test", signup)
    whale = _subscriber(bob.account_id, "c1@example.test", signup)
    _events(bob.account_id, whale, "purchase", [now - timedelta(days=2)], 10_000.0)
    return {"now": now, "ids": people, "cohort": account_data.monday(account_data.week_of(signup)).isoformat()}


def test_rfm_scores_customers_by_quintile_and_names_their_segments(client, alice, shop):
    body = _computed(client, alice, "rfm")
    assert (body["customers"], body["subscribers"], body["subscribers_without_value"]) == (5, 6, 1)
    cells = {(c["r"], c["f"], c["m"]): c["customers"] for c in body["scores"]}
    assert cells == {(5, 5, 3): 1, (4, 4, 2): 1, (3, 3, 4): 1, (2, 1, 5): 1, (1, 2, 1): 1}
    segments = {s["segment"]: s for s in body["segments"] if s["customers"]}
    assert segments == {
        "champions": {"segment": "champions", "customers": 1, "share": 0.2, "recency_days_mean": 1.0,
                      "frequency_mean": 5.0, "monetary_mean": 50.0, "revenue": 50.0},
        "loyal": {"segment": "loyal", "customers": 1, "share": 0.2, "recency_days_mean": 10.0,
                  "frequency_mean": 4.0, "monetary_mean": 40.0, "revenue": 40.0},
        "need_attention": {"segment": "need_attention", "customers": 1, "share": 0.2, "recency_days_mean": 20.0,
                           "frequency_mean": 3.0, "monetary_mean": 90.0, "revenue": 90.0},
        "hibernating": {"segment": "hibernating", "customers": 2, "share": 0.4, "recency_days_mean": 35.0,
                        "frequency_mean": 1.5, "monetary_mean": 55.0, "revenue": 110.0},
    }
    assert len(body["segments"]) == 10
    assert body["score_floors"]["recency_days"] == {"1": 40.0, "2": 30.0, "3": 20.0, "4": 10.0, "5": 1.0}

    response = client.get("/api/v1/analytics/rfm?format=csv", headers=alice.headers)
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["segment"], r["customers"], r["revenue"]) for r in rows if r["customers"] != "0"] == [
        ("champions", "1", "50.0"), ("loyal", "1", "40.0"), ("need_attention", "1", "90.0"),
        ("hibernating", "2", "110.0")]


def test_ltv_to_date_adds_each_cohorts_revenue_and_leaves_the_model_out_on_five_customers(client, alice, shop):
    body = _computed(client, alice, "ltv")
    assert (body["subscribers"], body["customers"], body["revenue"]) == (6, 5, 290.0)
    assert body["revenue_per_subscriber"] == round(290 / 6, 4)
    assert body["model"] is None and body["predicted_revenue"] is None
    assert body["cohorts"] == [{"cohort": shop["cohort"], "subscribers": 6, "customers": 5, "revenue": 290.0,
                                "revenue_per_subscriber": round(290 / 6, 4), "predicted_revenue": None,
                                "predicted_per_subscriber": None}]
    assert [(r["email"], r["transactions"], r["revenue"]) for r in body["top_subscribers"]] == [
        ("c4@example.test", 1, 100.0), ("c3@example.test", 3, 90.0), ("c1@example.test", 5, 50.0),
        ("c2@example.test", 4, 40.0), ("c5@example.test", 2, 10.0)]
    rows = list(csv.DictReader(io.StringIO(
        client.get("/api/v1/analytics/ltv?format=csv", headers=alice.headers).get_data(as_text=True))))
    assert [(r["cohort"], r["subscribers"], r["revenue"], r["predicted_revenue"]) for r in rows] == [
        (shop["cohort"], "6", "290.0", "")]


def test_ltv_predicts_each_customer_from_the_fitted_models(client, alice):
    """30 customers, customer k buying k % 5 + 1 times, a week apart, the last one
    k days ago, each purchase worth 10 + k: the answer's predictions are the
    fitted models' formulas applied to those histories."""
    now = utcnow()
    histories = []
    for k in range(30):
        sid = _subscriber(alice.account_id, f"k{k}@example.test", now - timedelta(days=120))
        last = now - timedelta(days=k, hours=1)
        times = [last - timedelta(weeks=j) for j in range(k % 5 + 1)]
        _events(alice.account_id, sid, "purchase", times, 10.0 + k)
        histories.append((sid, k % 5, (last - times[-1]).total_seconds() / 604800,
                          (now - times[-1]).total_seconds() / 604800, 10.0 + k))
    body = _computed(client, alice, "ltv")
    params = body["model"]["params"]
    assert (body["model"]["fitted_on"], body["model"]["horizon_weeks"], body["model"]["unpredicted"]) == (30, 52, 0)
    sid, x, t_x, big_t, mean = (np.array(v) for v in zip(*histories))
    expected = (btyd.expected_purchases(btyd.BgNbd(params["r"], params["alpha"], params["a"], params["b"]), 52,
                                        x, t_x, big_t)
                * btyd.expected_value(btyd.GammaGamma(params["p"], params["q"], params["gamma"]), x + 1, mean))
    by_id = {int(s): e for s, e in zip(sid, expected)}
    for row in body["top_subscribers"]:
        assert row["predicted_revenue"] == pytest.approx(by_id[row["subscriber_id"]], abs=0.02)
    assert body["predicted_revenue"] == pytest.approx(float(expected.sum()), abs=0.05)
    assert body["predicted_revenue"] > 0


def test_a_stale_analysis_is_found_once_new_events_arrive_and_a_held_one_is_not_claimed_twice(client, alice, shop):
    _computed(client, alice, "rfm")
    now = utcnow()
    with db.session_scope() as s:
        assert stale_analyses(s, now) == []
    _events(alice.account_id, shop["ids"]["c5"], "purchase", [now], 1.0)
    with db.session_scope() as s:
        assert stale_analyses(s, now) == [(alice.account_id, "rfm")]
        assert claim_analysis(s, alice.account_id, "rfm", now) is True
        assert claim_analysis(s, alice.account_id, "rfm", now) is False
        assert stale_analyses(s, now) == []
        assert stale_analyses(s, now + timedelta(minutes=7)) == [(alice.account_id, "rfm")]
        assert request_analysis(s, alice.account_id, "rfm", now) is False  # already there, not failed
    # the stored answer is served while the next one is computed
    response = client.get("/api/v1/analytics/rfm", headers=alice.headers)
    assert response.status_code == 200 and response.get_json()["status"] == "computing"
    assert response.get_json()["customers"] == 5


def test_an_unknown_format_is_a_422_naming_it(client, alice):
    for path in ("cohorts?format=svg2", "rfm?format=svg", "ltv?format=xml"):
        response = client.get(f"/api/v1/analytics/{path}", headers=alice.headers)
        assert response.status_code == 422
        assert "format" in response.get_json()["errors"]["query"]


def test_the_analyses_need_an_account(client):
    for kind in ("cohorts", "rfm", "ltv"):
        assert client.get(f"/api/v1/analytics/{kind}").status_code == 401


def test_the_funnel_as_svg_draws_each_steps_figures_with_text_escaped(client, alice):
    steps = [{"type": "email", "subject": "Hi", "text": "1"}, {"type": "delay", "seconds": 60},
             {"type": "email", "subject": "Again", "text": "2"}]
    sequence_id = factories.sequence(alice.account_id, steps)
    with db.session_scope() as s:
        from models import Sequence
        s.get(Sequence, sequence_id).name = "<script>alert(1)</script> & co"
    people = factories.subscribers(alice.account_id, 3)
    factories.enroll(alice.account_id, sequence_id, people, utcnow())
    funnel = client.get(f"/api/v1/email-sequences/{sequence_id}/funnel", headers=alice.headers).get_json()
    response = client.get(f"/api/v1/email-sequences/{sequence_id}/funnel?format=svg", headers=alice.headers)
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    root = ET.fromstring(response.get_data())
    assert list(root.iter(f"{SVG}script")) == []
    assert root.find(f"{SVG}title").text == "Funnel: <script>alert(1)</script> & co"
    drawn = [[r.find(f"{SVG}title").text for r in g.iter(f"{SVG}rect")]
             for g in root.iter(f"{SVG}g") if g.get("class") == "step"]
    assert drawn == [[f"Step {row['step']} ({row['type']}): {row[name]:,} {name}"
                      for name in ("entered", "passed", "exited", "waiting")] for row in funnel["steps"]]
    assert funnel["steps"][0]["entered"] == 3


@pytest.mark.committing
def test_a_real_worker_computes_what_the_first_get_asked_for(client, alice, shop, worker):
    assert client.get("/api/v1/analytics/ltv", headers=alice.headers).status_code == 202

    def answered():
        response = client.get("/api/v1/analytics/ltv", headers=alice.headers)
        return response.get_json() if response.status_code == 200 else None

    body = wait_for(answered, 60, "the analytics worker to compute the LTV")
    assert (body["status"], body["revenue"], body["customers"]) == ("ready", 290.0, 5)
    with db.session_scope() as s:
        row = s.scalar(select(AccountAnalysis).where(AccountAnalysis.account_id == alice.account_id))
        assert row.source_event_id == max(s.scalars(select(Event.id).where(Event.account_id == alice.account_id)))


@pytest.mark.committing
def test_rfm_and_ltv_asked_for_together_are_computed_from_one_read_and_the_second_task_finds_it_fresh(
        client, alice, shop):
    for kind in ("rfm", "ltv"):
        assert client.get(f"/api/v1/analytics/{kind}", headers=alice.headers).status_code == 202
    assert compute_account_analysis(alice.account_id, "rfm") is True
    with db.session_scope() as s:
        rows = {r.kind: (r.status, r.source_event_id) for r in s.scalars(
            select(AccountAnalysis).where(AccountAnalysis.account_id == alice.account_id))}
        newest = max(s.scalars(select(Event.id).where(Event.account_id == alice.account_id)))
    assert rows == {"rfm": ("ready", newest), "ltv": ("ready", newest)}
    assert compute_account_analysis(alice.account_id, "ltv") is False  # nothing new to read
    ltv = client.get("/api/v1/analytics/ltv", headers=alice.headers).get_json()
    assert (ltv["status"], ltv["revenue"], ltv["customers"], ltv["subscribers"]) == ("ready", 290.0, 5, 6)
    rfm = client.get("/api/v1/analytics/rfm", headers=alice.headers).get_json()
    assert (rfm["customers"], rfm["subscribers"]) == (5, 6)
    # New data: stale again, and the next task computes.
    _events(alice.account_id, shop["ids"]["c5"], "purchase", [utcnow()], 1.0)
    assert compute_account_analysis(alice.account_id, "ltv") is True
    assert client.get("/api/v1/analytics/ltv", headers=alice.headers).get_json()["revenue"] == 291.0


@pytest.mark.committing
def test_a_request_that_loses_the_race_to_queue_a_failed_analysis_answers_the_rows_status_now(client, alice):
    """Between this request's read of the failed analysis and its own attempt to
    queue it, another request queues it and a worker claims it: the answer is
    what the database holds then (``computing``), not the status this request
    loaded nor the one its own no-op UPDATE would have set in memory."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from analytics.account_analyses import fail_analysis

    with db.session_scope() as s:
        request_analysis(s, alice.account_id, "rfm", utcnow())
        fail_analysis(s, alice.account_id, "rfm", "OperationalError: gone")
    raced = []

    def the_other_request_and_a_worker_first(state):
        if state.is_insert and not raced and "account_analyses" in str(state.statement):
            raced.append(True)
            with db.session_scope() as other:
                assert request_analysis(other, alice.account_id, "rfm", utcnow()) is True
                assert claim_analysis(other, alice.account_id, "rfm", utcnow()) is True

    event.listen(Session, "do_orm_execute", the_other_request_and_a_worker_first)
    try:
        response = client.get("/api/v1/analytics/rfm", headers=alice.headers)
    finally:
        event.remove(Session, "do_orm_execute", the_other_request_and_a_worker_first)
    assert raced == [True]
    assert response.status_code == 202
    assert response.get_json() == {"kind": "rfm", "status": "computing", "computed_at": None,
                                   "error": "OperationalError: gone"}
