"""Warming plans API: defaults, the full schedule and today's figures, errors that
name the field and write nothing, one plan per provider, tenant isolation, an
operator's pause and resume, and the plot."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from models import WarmingPlan, db
from tests.conftest import METRICS_TOKEN

SMTP = {"name": "new-ip", "kind": "smtp", "priority": 1, "config": {"host": "93.184.216.34", "port": 587}}


def provider(client, tenant) -> int:
    return client.post("/api/v1/providers", json=SMTP, headers=tenant.headers).get_json()["id"]


def test_a_default_plan_ramps_50_to_3000_over_30_days_and_shows_today(client, alice):
    pid = provider(client, alice)
    created = client.post("/api/v1/warming-plans", json={"provider_id": pid}, headers=alice.headers)
    assert created.status_code == 201
    plan = created.get_json()
    volumes = [d["volume"] for d in plan["schedule"]]
    assert len(volumes) == 30 and volumes[0] == 50 and volumes[-1] == 3000
    assert volumes == sorted(volumes)
    assert plan["day"] == 1 and plan["status"] == "warming"
    assert plan["today"]["cap"] == sum(g["cap"] for g in plan["today"]["groups"].values()) == 50
    assert plan["today"]["used"] == 0 and plan["adjustments"] == []
    assert plan["settings"]["thresholds"]["bounce"]["hold"] == 0.05
    assert client.get(f"/api/v1/warming-plans/{plan['id']}", headers=alice.headers).get_json()["id"] == plan["id"]
    assert [p["id"] for p in client.get("/api/v1/warming-plans", headers=alice.headers).get_json()] == [plan["id"]]


def test_bad_plans_name_the_field_and_write_nothing(client, alice, bob):
    pid = provider(client, alice)
    cases = [({"provider_id": pid, "days": 0}, "days"),
             ({"provider_id": pid, "start_volume": 500, "target_volume": 100}, "target_volume"),
             ({"provider_id": pid, "curve": "zigzag"}, "curve"),
             ({"provider_id": pid, "thresholds": {"bounce": {"hold": 2}}}, "thresholds.bounce.hold"),
             ({"provider_id": pid, "shares": {"gmail": 0.9, "yahoo": 0.9, "microsoft": 0, "other": 0}}, "shares"),
             ({"provider_id": pid, "timezone": "Mars/Olympus"}, "timezone"),
             ({"provider_id": pid, "sending_hours": [20, 8]}, "sending_hours"),
             ({"provider_id": provider(client, bob)}, "provider_id"),
             ({"days": 30}, "provider_id")]
    for payload, field in cases:
        response = client.post("/api/v1/warming-plans", json=payload, headers=alice.headers)
        assert response.status_code == 422, payload
        assert any(k.startswith(field) for k in response.get_json()["errors"]["json"]), (payload, response.get_json())
    with db.session_scope() as s:
        assert s.query(WarmingPlan).count() == 0


def test_one_plan_per_provider_and_other_accounts_see_nothing(client, alice, bob):
    pid = provider(client, alice)
    plan = client.post("/api/v1/warming-plans", json={"provider_id": pid}, headers=alice.headers).get_json()
    again = client.post("/api/v1/warming-plans", json={"provider_id": pid}, headers=alice.headers)
    assert again.status_code == 409 and "provider_id" in again.get_json()["errors"]["json"]
    for method, path in (("get", f"/api/v1/warming-plans/{plan['id']}"), ("patch", f"/api/v1/warming-plans/{plan['id']}"),
                         ("delete", f"/api/v1/warming-plans/{plan['id']}"),
                         ("get", f"/api/v1/warming-plans/{plan['id']}/plot.svg")):
        kwargs = {"json": {"status": "paused"}} if method == "patch" else {}
        assert getattr(client, method)(path, headers=bob.headers, **kwargs).status_code == 404
    assert client.get("/api/v1/warming-plans", headers=bob.headers).get_json() == []


def test_an_operator_pauses_and_resumes_and_each_change_is_in_the_history(client, alice):
    pid = provider(client, alice)
    plan = client.post("/api/v1/warming-plans", json={"provider_id": pid, "start_volume": 100,
                                                      "target_volume": 1000, "days": 10}, headers=alice.headers).get_json()
    paused = client.patch(f"/api/v1/warming-plans/{plan['id']}", json={"status": "paused"}, headers=alice.headers)
    assert paused.status_code == 200
    body = paused.get_json()
    assert body["status"] == "paused" and body["today"]["cap"] == 0
    assert {a["action"] for a in body["adjustments"]} == {"pause"}
    assert all(a["reason"] == "paused by an operator" for a in body["adjustments"])
    resumed = client.patch(f"/api/v1/warming-plans/{plan['id']}", json={"status": "warming"},
                           headers=alice.headers).get_json()
    assert resumed["status"] == "warming" and resumed["today"]["cap"] == 100
    assert [a["action"] for a in resumed["adjustments"]].count("resume") == 4
    bad = client.patch(f"/api/v1/warming-plans/{plan['id']}", json={"thresholds": {"complaint": {"hold": -1}}},
                       headers=alice.headers)
    assert bad.status_code == 422 and "thresholds.complaint.hold" in bad.get_json()["errors"]["json"]


def test_the_plot_is_an_svg_an_operator_can_open(client, alice):
    pid = provider(client, alice)
    plan = client.post("/api/v1/warming-plans", json={"provider_id": pid}, headers=alice.headers).get_json()
    response = client.get(f"/api/v1/warming-plans/{plan['id']}/plot.svg", headers=alice.headers)
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    root = ET.fromstring(response.get_data(as_text=True))
    assert root.tag.endswith("svg")
    assert root.find("{http://www.w3.org/2000/svg}title").text == f"Warming plan {plan['id']}"
    planned = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("data-series") == "planned"]
    assert len(list(planned[0].iter("{http://www.w3.org/2000/svg}circle"))) == 30, "the whole schedule is drawn"


def test_deleting_a_plan_lifts_the_cap(client, alice):
    pid = provider(client, alice)
    from warming.quota import load_plans

    plan = client.post("/api/v1/warming-plans", json={"provider_id": pid}, headers=alice.headers).get_json()
    with db.session_scope() as s:
        assert set(load_plans(s, {pid})) == {pid}, "the send path sees the plan"
    assert client.delete(f"/api/v1/warming-plans/{plan['id']}", headers=alice.headers).status_code == 204
    assert client.get(f"/api/v1/warming-plans/{plan['id']}", headers=alice.headers).status_code == 404
    with db.session_scope() as s:
        assert load_plans(s, {pid}) == {}, "and no longer limits the provider"


@pytest.mark.committing  # the metrics' gauges are read on a connection of their own
def test_metrics_show_each_plan_its_latest_day_and_each_provider_circuit(client, alice):
    from models import WarmingDay
    from tests.support.prometheus import sample

    pid = provider(client, alice)
    plan = client.post("/api/v1/warming-plans", json={"provider_id": pid}, headers=alice.headers).get_json()
    with db.session_scope() as s:
        s.add_all([WarmingDay(plan_id=plan["id"], day=1, grp="gmail", cap=20, reserved=18, sent=17, bounced=1,
                              complained=0, deferred=0),
                   WarmingDay(plan_id=plan["id"], day=2, grp="gmail", cap=23, reserved=5, sent=4, bounced=2,
                              complained=1, deferred=0)])
    text = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).get_data(as_text=True)
    labels = {"plan_id": str(plan["id"]), "group": "gmail"}
    assert sample(text, "eseq_warming_plan", plan_id=str(plan["id"]), status="warming") == 1
    assert sample(text, "eseq_warming_day", **labels) == 2
    assert sample(text, "eseq_warming_cap", **labels) == 23
    assert sample(text, "eseq_warming_reserved", **labels) == 5
    assert (sample(text, "eseq_warming_sent", **labels), sample(text, "eseq_warming_bounced", **labels),
            sample(text, "eseq_warming_complained", **labels)) == (4, 2, 1)
    assert sample(text, "eseq_provider_circuit", provider_id=str(pid), state="closed") == 1


def test_the_list_reads_every_plan_in_the_same_number_of_queries_and_each_as_get_shows_it(client, alice):
    from sqlalchemy import event

    statements: list[str] = []

    def count(_conn, _cursor, statement, *_):
        statements.append(statement)

    def listed() -> tuple[int, list[dict]]:
        statements.clear()
        event.listen(db.get_engine(), "before_cursor_execute", count)
        try:
            body = client.get("/api/v1/warming-plans", headers=alice.headers).get_json()
        finally:
            event.remove(db.get_engine(), "before_cursor_execute", count)
        return len(statements), body

    first = client.post("/api/v1/warming-plans", json={"provider_id": provider(client, alice)},
                        headers=alice.headers).get_json()
    client.patch(f"/api/v1/warming-plans/{first['id']}", json={"status": "paused"}, headers=alice.headers)
    with_one, _ = listed()
    for n in range(3):
        other = client.post("/api/v1/providers", json={**SMTP, "name": f"new-ip-{n}"}, headers=alice.headers)
        client.post("/api/v1/warming-plans", json={"provider_id": other.get_json()["id"]}, headers=alice.headers)
    with_four, plans = listed()
    assert with_four == with_one, "queries grew with the number of plans"
    assert len(plans) == 4
    for plan in plans:  # what the list shows of each plan is what GET shows of it
        assert plan == client.get(f"/api/v1/warming-plans/{plan['id']}", headers=alice.headers).get_json()
    assert {a["action"] for a in plans[0]["adjustments"]} == {"pause"} and plans[1]["adjustments"] == []
