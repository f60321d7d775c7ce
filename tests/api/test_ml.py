"""``/api/v1/ml``: queueing training runs, reading and promoting models, the scores
in pages and as CSV, a subscriber's scores, and the sequences' score condition and
best_time option as the sequences API validates them. Alice and Bob never see each
other's models or scores."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from models import MlModel, Sequence, SubscriberScore, db
from models.base import utcnow

AS_OF = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def _model(account_id: int, kind: str = "churn", status: str = "ready", live: bool = False) -> int:
    with db.session_scope() as s:
        row = MlModel(account_id=account_id, kind=kind, status=status, as_of=AS_OF, params={"n": 1},
                      metrics={"roc_auc": 0.8}, artifact=b"bytes" if status == "ready" else None,
                      artifact_sha256="ab" * 32 if status == "ready" else None, promoted=status == "ready",
                      live=live, attempts=1, created_at=AS_OF)
        s.add(row)
        s.flush()
        return row.id


def _subscriber(client, account, email: str) -> int:
    response = client.post("/api/v1/subscribers", json={"email": email}, headers=account.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _score(account_id: int, subscriber_id: int, churn: float | None, engagement: float | None, hour: int | None,
           model_id: int | None = None) -> None:
    with db.session_scope() as s:
        s.add(SubscriberScore(account_id=account_id, subscriber_id=subscriber_id, churn_risk=churn,
                              engagement=engagement, best_send_hour=hour, scored_at=AS_OF, churn_model_id=model_id))


def test_a_training_run_is_accepted_queued_and_readable(client, alice):
    response = client.post("/api/v1/ml/models", json={"kind": "churn", "as_of": AS_OF.isoformat()},
                           headers=alice.headers)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["status"] == "queued"
    model = client.get(f"/api/v1/ml/models/{body['id']}", headers=alice.headers).get_json()
    assert (model["id"], model["kind"], model["status"], model["promoted"], model["live"]) == \
        (body["id"], "churn", "queued", False, False)
    assert datetime.fromisoformat(model["as_of"]) == AS_OF
    assert "artifact" not in model and model["artifact_sha256"] is None


def test_as_of_defaults_to_now(client, alice):
    before = utcnow()
    model_id = client.post("/api/v1/ml/models", json={"kind": "send_time"}, headers=alice.headers).get_json()["id"]
    with db.session_scope() as s:
        as_of = s.get(MlModel, model_id).as_of
    assert before <= as_of <= utcnow()


def test_bad_training_requests_are_422_naming_the_field(client, alice):
    cases = [({}, "kind"), ({"kind": "revenue"}, "kind"), ({"kind": "churn", "as_of": "yesterday"}, "as_of"),
             ({"kind": "churn", "as_of": "2026-05-01T12:00:00"}, "as_of"),  # no offset
             ({"kind": "churn", "as_of": (utcnow() + timedelta(days=1)).isoformat()}, "as_of"),
             ({"kind": "churn", "bogus": 1}, "bogus")]
    for body, field in cases:
        response = client.post("/api/v1/ml/models", json=body, headers=alice.headers)
        assert response.status_code == 422, (body, response.get_json())
        assert field in response.get_json()["errors"]["json"], (body, response.get_json())
    with db.session_scope() as s:
        assert s.scalars(select(MlModel)).all() == []


def test_another_accounts_model_is_not_found_and_not_listed(client, alice, bob):
    alices = _model(alice.account_id)
    bobs = _model(bob.account_id)
    assert client.get(f"/api/v1/ml/models/{alices}", headers=bob.headers).status_code == 404
    assert client.post(f"/api/v1/ml/models/{alices}/promote", headers=bob.headers).status_code == 404
    listed = client.get("/api/v1/ml/models", headers=bob.headers)
    assert [m["id"] for m in listed.get_json()] == [bobs]
    assert json.loads(listed.headers["X-Pagination"])["total"] == 1
    with db.session_scope() as s:
        assert s.get(MlModel, alices).live is False


def test_models_list_filters_by_kind_and_status(client, alice):
    churn = _model(alice.account_id, "churn")
    _model(alice.account_id, "engagement")
    _model(alice.account_id, "churn", status="failed")
    listed = client.get("/api/v1/ml/models", query_string={"kind": "churn", "status": "ready"}, headers=alice.headers)
    assert [m["id"] for m in listed.get_json()] == [churn]
    assert client.get("/api/v1/ml/models", query_string={"kind": "x"}, headers=alice.headers).status_code == 422


def test_promoting_an_earlier_model_makes_it_the_only_live_one_of_its_kind(client, alice):
    older = _model(alice.account_id, "churn")
    newer = _model(alice.account_id, "churn", live=True)
    other_kind = _model(alice.account_id, "engagement", live=True)
    response = client.post(f"/api/v1/ml/models/{older}/promote", headers=alice.headers)
    assert response.status_code == 200 and response.get_json()["live"] is True
    with db.session_scope() as s:
        live = {m.id: m.live for m in s.scalars(select(MlModel))}
    assert live == {older: True, newer: False, other_kind: True}


def test_only_a_ready_model_can_be_promoted(client, alice):
    for status in ("queued", "training", "failed"):
        model_id = _model(alice.account_id, status=status)
        response = client.post(f"/api/v1/ml/models/{model_id}/promote", headers=alice.headers)
        assert response.status_code == 409, status
        with db.session_scope() as s:
            assert s.get(MlModel, model_id).live is False


def test_scores_come_in_pages_of_the_callers_subscribers_only(client, alice, bob):
    ann = _subscriber(client, alice, "ann@example.com")
    cy = _subscriber(client, alice, "cy@example.com")
    _subscriber(client, alice, "unscored@example.com")
    bobs = _subscriber(client, bob, "bob@example.com")
    model_id = _model(alice.account_id, live=True)
    _score(alice.account_id, ann, 0.25, 0.5, 9, model_id)
    _score(alice.account_id, cy, None, 0.125, None)
    _score(bob.account_id, bobs, 0.75, 0.75, 20)
    response = client.get("/api/v1/ml/scores", query_string={"page_size": 1}, headers=alice.headers)
    assert response.status_code == 200
    assert json.loads(response.headers["X-Pagination"])["total"] == 2
    [first] = response.get_json()
    assert {k: first[k] for k in ("subscriber_id", "email", "churn_risk", "engagement", "best_send_hour",
                                  "model_id")} == {"subscriber_id": ann, "email": "ann@example.com",
                                                   "churn_risk": 0.25, "engagement": 0.5, "best_send_hour": 9,
                                                   "model_id": model_id}
    [second] = client.get("/api/v1/ml/scores", query_string={"page_size": 1, "page": 2},
                          headers=alice.headers).get_json()
    assert (second["email"], second["churn_risk"], second["model_id"]) == ("cy@example.com", None, None)


def test_scores_as_csv_have_exactly_the_four_columns(client, alice, bob):
    ann = _subscriber(client, alice, "ann@example.com")
    cy = _subscriber(client, alice, "cy@example.com")
    _score(alice.account_id, ann, 0.25, 0.5, 9)
    _score(alice.account_id, cy, None, 0.125, 23)
    _score(bob.account_id, _subscriber(client, bob, "bob@example.com"), 0.75, 0.75, 20)
    response = client.get("/api/v1/ml/scores", query_string={"format": "csv"}, headers=alice.headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0] == "email,churn_risk,engagement,best_send_hour"
    assert list(csv.reader(io.StringIO("\n".join(lines[1:])))) == [
        ["ann@example.com", "0.25", "0.5", "9"], ["cy@example.com", "", "0.125", "23"]]
    assert client.get("/api/v1/ml/scores", query_string={"format": "xml"},
                      headers=alice.headers).status_code == 422


def test_scores_csv_longer_than_a_block_is_streamed_whole_in_subscriber_order(client, alice, monkeypatch):
    from web import csv_response
    from web.ml import routes

    monkeypatch.setattr(csv_response, "BLOCK_ROWS", 7)
    monkeypatch.setattr(routes, "CSV_BATCH", 5)  # the cursor's batches, too, are crossed
    ids = [_subscriber(client, alice, f"s{n:02d}@example.com") for n in range(23)]
    for n, subscriber_id in enumerate(ids):
        _score(alice.account_id, subscriber_id, n / 100, 1 - n / 100, n % 24)
    response = client.get("/api/v1/ml/scores", query_string={"format": "csv"}, headers=alice.headers)
    assert response.status_code == 200 and response.is_streamed
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["email", "churn_risk", "engagement", "best_send_hour"]
    assert rows[1:] == [[f"s{n:02d}@example.com", str(n / 100), str(1 - n / 100), str(n % 24)] for n in range(23)]


def test_a_subscriber_shows_their_scores_or_null(client, alice):
    ann = _subscriber(client, alice, "ann@example.com")
    unscored = _subscriber(client, alice, "new@example.com")
    model_id = _model(alice.account_id, live=True)
    _score(alice.account_id, ann, 0.25, 0.5, 9, model_id)
    scores = client.get(f"/api/v1/subscribers/{ann}", headers=alice.headers).get_json()["scores"]
    assert {k: scores[k] for k in ("churn_risk", "engagement", "best_send_hour", "model_id")} == \
        {"churn_risk": 0.25, "engagement": 0.5, "best_send_hour": 9, "model_id": model_id}
    assert datetime.fromisoformat(scores["scored_at"]) == AS_OF
    assert client.get(f"/api/v1/subscribers/{unscored}", headers=alice.headers).get_json()["scores"] is None


def test_an_account_without_scores_gets_an_empty_page(client, alice):
    response = client.get("/api/v1/ml/scores", headers=alice.headers)
    assert response.status_code == 200 and response.get_json() == []


STEPS = [{"type": "email", "subject": "Hi", "text": "x", "send_at": "best_time"},
         {"type": "condition", "condition": {"type": "score", "score": "churn_risk", "op": "gt", "value": 0.7},
          "else_goto": "exit"}]


def test_a_sequence_takes_a_score_condition_and_best_time(client, alice):
    response = client.post("/api/v1/email-sequences", json={"name": "Save", "steps": STEPS}, headers=alice.headers)
    assert response.status_code == 201, response.get_json()
    steps = response.get_json()["steps"]
    assert steps[0]["send_at"] == "best_time"
    assert steps[1]["condition"] == {"type": "score", "score": "churn_risk", "op": "gt", "value": 0.7}


def test_a_bad_score_condition_or_send_at_is_422_naming_each_field(client, alice):
    steps = [{"type": "email", "subject": "Hi", "text": "x", "send_at": "whenever"},
             {"type": "condition", "condition": {"type": "score", "score": "ltv", "op": "eq", "value": 7},
              "else_goto": "exit"},
             {"type": "condition", "condition": {"type": "score", "score": "engagement", "op": "lt"},
              "else_goto": "exit"}]
    response = client.post("/api/v1/email-sequences", json={"name": "Save", "steps": steps}, headers=alice.headers)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]["json"]) == {
        "steps.0.send_at", "steps.1.condition.score", "steps.1.condition.op", "steps.1.condition.value",
        "steps.2.condition.value"}
    with db.session_scope() as s:
        assert s.scalars(select(Sequence)).all() == []
