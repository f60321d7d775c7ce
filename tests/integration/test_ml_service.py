"""The ml service on real PostgreSQL: training on a real worker consuming the ml
queue, a killed training never left "ready", scores that branch real enrollments,
and best_time holding an email until the learned hour (time injected)."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pandas as pd
from sqlalchemy import func, insert, select

from ml import registry
from ml.scoring import write_scores
from ml.simulator import simulate
from tasks.ml import score
from models import Enrollment, Event, Message, MlModel, Subscriber, SubscriberScore, db
from tests.support import factories
from tests.support.engine import run_due
from tests.support.waiting import wait_for

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday: 04:00 in New York


def _load_simulation(account_id: int, n: int, weeks: int, seed: int) -> tuple[datetime, int]:
    """A simulated history written as the account's subscribers and events: (its end, subscribers)."""
    sim = simulate(n, weeks=weeks, seed=seed)
    subs = sim.history.subscribers
    with db.session_scope() as s:
        rows = [{"account_id": account_id, "email": f"sim{sid}@example.test",
                 "timezone": None if pd.isna(tz) else str(tz), "status": str(status),
                 "created_at": created.to_pydatetime(), "updated_at": created.to_pydatetime(), "attributes": {},
                 "tags": []}
                for sid, tz, status, created in zip(subs.index, subs["timezone"], subs["status"], subs["created_at"])]
        ids = list(s.scalars(insert(Subscriber).returning(Subscriber.id), rows))
        to_db = dict(zip(subs.index, ids))
        events = sim.history.events
        s.execute(insert(Event), [
            {"account_id": account_id, "subscriber_id": to_db[sid], "name": str(name), "source": "import",
             "occurred_at": at.to_pydatetime(), "value": None if pd.isna(value) else float(value), "properties": {}}
            for sid, name, at, value in zip(events["subscriber_id"], events["name"], events["occurred_at"],
                                            events["value"])])
    return sim.end, len(ids)


def _model(model_id: int) -> MlModel:
    with db.session_scope() as s:
        return s.get(MlModel, model_id)


def test_a_model_trains_on_the_ml_worker_and_the_account_is_scored_as_of_its_time(client, alice, worker):
    end, subscribers = _load_simulation(alice.account_id, 400, weeks=30, seed=3)
    ids = {}
    for kind in ("churn", "engagement", "send_time"):
        response = client.post("/api/v1/ml/models", json={"kind": kind, "as_of": end.isoformat()},
                               headers=alice.headers)
        assert response.status_code == 202, response.get_json()
        ids[kind] = response.get_json()["id"]
    for kind, model_id in ids.items():
        wait_for(lambda: _model(model_id).status in ("ready", "failed"), 180, f"the {kind} model to train")
        model = _model(model_id)
        assert model.status == "ready", model.error
        assert model.metrics and model.finished_at is not None and model.attempts == 1
        assert model.window_end == end and model.window_start is not None and model.window_start < end
        with db.session_scope() as s:
            artifact = s.scalar(select(MlModel.artifact).where(MlModel.id == model_id))
        assert model.artifact_sha256 == hashlib.sha256(artifact).hexdigest()
        assert model.live == model.promoted
        body = client.get(f"/api/v1/ml/models/{model_id}", headers=alice.headers).get_json()
        assert body["status"] == "ready" and body["metrics"] == model.metrics and "artifact" not in body
    assert "roc_auc" in _model(ids["churn"]).metrics
    # "ready" was written with the scores: every subscriber is scored as of the run's as_of already.
    with db.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(SubscriberScore).where(
            SubscriberScore.account_id == alice.account_id, SubscriberScore.scored_at == end)) == subscribers
    # The runs trained side by side (four worker threads here), so a rescoring shows every live model.
    score.delay(alice.account_id, end.isoformat())
    live = {kind: (model_id if _model(model_id).live else None) for kind, model_id in ids.items()}

    def rescored() -> bool:
        with db.session_scope() as s:
            return {(r.churn_model_id, r.engagement_model_id, r.send_time_model_id)
                    for r in s.scalars(select(SubscriberScore))} == {(live["churn"], live["engagement"],
                                                                      live["send_time"])}
    wait_for(rescored, 120, "the ml.score task to rescore with every live model")
    with db.session_scope() as s:
        rows = list(s.scalars(select(SubscriberScore).where(SubscriberScore.account_id == alice.account_id)))
    assert len(rows) == subscribers
    assert all(r.churn_risk is not None and 0 <= r.churn_risk <= 1 for r in rows)
    assert all(r.engagement is not None and 0 <= r.engagement <= 1 for r in rows)
    assert all(r.best_send_hour is not None and 0 <= r.best_send_hour <= 23 for r in rows)


def test_a_model_that_cannot_train_fails_with_the_reason_and_is_never_live(client, alice, worker):
    response = client.post("/api/v1/ml/models", json={"kind": "churn"}, headers=alice.headers)  # no history at all
    model_id = response.get_json()["id"]
    wait_for(lambda: _model(model_id).status in ("ready", "failed"), 120, "the run to end")
    model = _model(model_id)
    assert (model.status, model.live, model.artifact_sha256) == ("failed", False, None)
    assert model.error


def test_a_training_whose_worker_died_is_failed_by_the_sweep_and_cannot_turn_ready_later():
    acct = factories.account()
    with db.session_scope() as s:
        model_id = registry.queue_model(s, acct, "churn", T0, T0).id
    with db.session_scope() as s:
        assert registry.claim_for_training(s, model_id, T0) is not None
    with db.session_scope() as s:
        assert registry.claim_for_training(s, model_id, T0) is None  # claimed once only
        assert registry.sweep_lapsed(s, T0 + registry.TRAINING_LEASE - timedelta(seconds=1)) == ([], [])
    with db.session_scope() as s:
        assert registry.sweep_lapsed(s, T0 + registry.TRAINING_LEASE + timedelta(seconds=1)) == ([model_id], [])
    from ml.model import TrainedModel

    late = TrainedModel(kind="churn", estimator=None, params={}, metrics={"roc_auc": 0.9}, promoted=True)
    with db.session_scope() as s:
        assert registry.record_trained(s, model_id, late, None, T0 + timedelta(hours=2)) is None
    model = _model(model_id)
    assert (model.status, model.live, model.artifact_sha256, model.metrics) == ("failed", False, None, {})
    assert "training stopped" in model.error


def test_a_queued_run_no_worker_took_is_handed_out_again():
    acct = factories.account()
    with db.session_scope() as s:
        model_id = registry.queue_model(s, acct, "engagement", T0, T0).id
    with db.session_scope() as s:
        assert registry.sweep_lapsed(s, T0 + timedelta(minutes=29)) == ([], [])
        assert registry.sweep_lapsed(s, T0 + timedelta(minutes=31)) == ([], [model_id])


def _scores(acct: int, by_subscriber: dict[int, tuple[float | None, float | None, int | None]]) -> None:
    frame = pd.DataFrame([(sid, c, e, h) for sid, (c, e, h) in by_subscriber.items()],
                         columns=["subscriber_id", "churn_risk", "engagement", "best_send_hour"]).astype(
        {"churn_risk": "float64", "engagement": "float64", "best_send_hour": "float64"})
    with db.session_scope() as s:
        write_scores(s, acct, T0, {}, frame)


def _subjects() -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    with db.session_scope() as s:
        for m in s.scalars(select(Message).order_by(Message.id)):
            out.setdefault(m.subscriber_id, []).append(m.subject)
    return out


def test_a_churn_risk_condition_branches_real_enrollments():
    acct = factories.account()
    risky, safe, edge, unscored = factories.subscribers(acct, 4)
    _scores(acct, {risky: (0.9, 0.1, 9), safe: (0.2, 0.8, 9), edge: (0.7, 0.5, 9)})
    seq = factories.sequence(acct, [
        {"type": "condition", "condition": {"type": "score", "score": "churn_risk", "op": "gt", "value": 0.7},
         "else_goto": 3},
        {"type": "email", "subject": "We miss you", "text": "x"},
        {"type": "action", "action": "exit"},
        {"type": "email", "subject": "Newsletter", "text": "x"},
    ])
    factories.enroll(acct, seq, [risky, safe, edge, unscored], T0)
    run_due(T0)
    assert _subjects() == {risky: ["We miss you"], safe: ["Newsletter"], edge: ["Newsletter"],
                           unscored: ["Newsletter"]}


def test_scores_of_another_account_never_reach_a_condition():
    alice, bob = factories.account("Alice"), factories.account("Bob")
    [sub] = factories.subscribers(alice, 1)
    # A row claiming Alice's subscriber under Bob's account is not hers.
    with db.session_scope() as s:
        s.add(SubscriberScore(account_id=bob, subscriber_id=sub, churn_risk=0.99, scored_at=T0))
    seq = factories.sequence(alice, [
        {"type": "condition", "condition": {"type": "score", "score": "churn_risk", "op": "gte", "value": 0.5},
         "else_goto": 2},
        {"type": "email", "subject": "Risky", "text": "x"},
        {"type": "email", "subject": "Normal", "text": "x"},
    ])
    factories.enroll(alice, seq, [sub], T0)
    run_due(T0)
    assert _subjects() == {sub: ["Normal"]}


def test_best_time_holds_each_email_until_the_learned_hour_inside_the_send_window():
    acct = factories.account()
    at_two, late_owl, unscored = factories.subscribers(acct, 3, timezone="America/New_York")
    _scores(acct, {at_two: (0.1, 0.9, 14), late_owl: (0.1, 0.9, 22)})
    seq = factories.sequence(acct, [{"type": "email", "subject": "Hi", "text": "x", "send_at": "best_time"}],
                             settings={"send_window": {"start": "09:00", "end": "17:00"}})
    by_sub = dict(zip([at_two, late_owl, unscored], factories.enroll(acct, seq, [at_two, late_owl, unscored], T0)))
    assert run_due(T0) == []  # 04:00 in New York: nobody's hour, and the window is shut
    with db.session_scope() as s:
        due = {e.subscriber_id: e.next_run_at for e in s.scalars(select(Enrollment))}
    assert due == {at_two: datetime(2026, 3, 2, 19, 0, tzinfo=timezone.utc),  # 14:00 EST
                   late_owl: datetime(2026, 3, 2, 21, 0, tzinfo=timezone.utc),  # 16:00, the window's last hour
                   unscored: datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)}  # the window's opening
    assert len(run_due(datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc))) == 1
    assert list(_subjects()) == [unscored]
    assert run_due(datetime(2026, 3, 2, 18, 59, tzinfo=timezone.utc)) == []
    assert len(run_due(datetime(2026, 3, 2, 19, 0, tzinfo=timezone.utc))) == 1
    assert len(run_due(datetime(2026, 3, 2, 21, 0, tzinfo=timezone.utc))) == 1
    assert sorted(_subjects()) == sorted([at_two, late_owl, unscored])
    with db.session_scope() as s:
        assert {e.status for e in s.scalars(select(Enrollment).where(Enrollment.id.in_(by_sub.values())))} == \
            {"completed"}


def test_best_time_sends_at_once_when_now_is_the_learned_hour():
    acct = factories.account()
    [sub] = factories.subscribers(acct, 1, timezone="Europe/Paris")
    _scores(acct, {sub: (None, None, 10)})  # T0 is 10:00 in Paris
    seq = factories.sequence(acct, [{"type": "email", "subject": "Now", "text": "x", "send_at": "best_time"}])
    factories.enroll(acct, seq, [sub], T0)
    assert len(run_due(T0)) == 1


def test_the_service_trains_promotes_scores_and_sweeps_on_the_embedded_sqlite_default(tmp_path):
    from ml import api
    from ml.runs import fit, window_start
    from ml.scoring import score_account
    from tests.support.database import embedded_sqlite

    with embedded_sqlite(tmp_path):
        acct = factories.account_row(T0)
        end, subscribers = _load_simulation(acct, 150, weeks=20, seed=5)
        with db.session_scope() as s:
            model_id = registry.queue_model(s, acct, "send_time", end, end).id
            stuck = registry.queue_model(s, acct, "engagement", end, end).id
        with db.session_scope() as s:
            registry.claim_for_training(s, model_id, end)
            registry.claim_for_training(s, stuck, end)
            history = api.load_history(s, acct, until=end)
        trained = fit("send_time", history, end)
        with db.session_scope() as s:
            assert registry.record_trained(s, model_id, trained, window_start(history), end) is not None
            assert registry.sweep_lapsed(s, end + registry.TRAINING_LEASE * 2) == ([stuck], [])
        with db.session_scope() as s:
            assert score_account(s, acct, end) == subscribers
        with db.session_scope() as s:
            assert score_account(s, acct, end) == subscribers  # a rescoring replaces the rows
        with db.session_scope() as s:
            rows = list(s.scalars(select(SubscriberScore)))
            assert (s.get(MlModel, model_id).status, s.get(MlModel, stuck).status) == ("ready", "failed")
        assert len(rows) == subscribers
        assert trained.promoted  # learned hours beat the fixed 9-12h rule on this simulated history
        assert {r.send_time_model_id for r in rows} == {model_id}
        assert all(r.scored_at == end and r.best_send_hour is not None for r in rows)


def test_weekly_retraining_queues_each_kind_once_for_accounts_with_history():
    with_history, without = factories.account("Alice"), factories.account("Bob")
    [sub] = factories.subscribers(with_history, 1)
    with db.session_scope() as s:
        s.add(Event(account_id=with_history, subscriber_id=sub, name="opened", occurred_at=T0))
    with db.session_scope() as s:
        queued = registry.queue_retraining(s, T0)
    with db.session_scope() as s:
        models = list(s.scalars(select(MlModel).where(MlModel.id.in_(queued))))
        assert sorted((m.account_id, m.kind, m.status) for m in models) == [
            (with_history, "churn", "queued"), (with_history, "engagement", "queued"),
            (with_history, "send_time", "queued")]
        assert registry.queue_retraining(s, T0 + timedelta(days=7)) == []  # still queued: nothing twice
    assert without not in {m.account_id for m in models}


def test_a_run_finishing_late_does_not_displace_a_newer_live_model():
    from ml.model import TrainedModel

    acct = factories.account()
    promoted = TrainedModel(kind="churn", estimator=None, params={}, metrics={}, promoted=True)
    with db.session_scope() as s:
        older = registry.queue_model(s, acct, "churn", T0, T0).id
        newer = registry.queue_model(s, acct, "churn", T0, T0).id
        beaten = registry.queue_model(s, acct, "churn", T0, T0).id
    with db.session_scope() as s:
        for model_id in (older, newer, beaten):
            registry.claim_for_training(s, model_id, T0)
        registry.record_trained(s, newer, promoted, None, T0)
        registry.record_trained(s, older, promoted, None, T0)
        registry.record_trained(s, beaten, TrainedModel(kind="churn", estimator=None, params={}, metrics={},
                                                        promoted=False), None, T0)
    with db.session_scope() as s:
        assert {m.id: (m.status, m.promoted, m.live) for m in s.scalars(select(MlModel))} == {
            older: ("ready", True, False), newer: ("ready", True, True), beaten: ("ready", False, False)}


def test_scores_are_written_exactly_and_replaced_only_within_their_account():
    alice, bob = factories.account("Alice"), factories.account("Bob")
    a1, a2 = factories.subscribers(alice, 2)
    [b1] = factories.subscribers(bob, 1, prefix="bob")
    _scores(alice, {a1: (0.123456789, 0.5, 23), a2: (None, 0.25, None)})
    _scores(bob, {b1: (0.5, 0.5, 1)})
    with db.session_scope() as s:
        # Bob's run naming Alice's subscriber replaces nothing of hers.
        write_scores(s, bob, T0 + timedelta(days=1), {"churn": 7},
                     pd.DataFrame({"subscriber_id": [a1], "churn_risk": [0.99], "engagement": [0.0],
                                   "best_send_hour": [3.0]}))
    with db.session_scope() as s:
        got = {r.subscriber_id: (r.account_id, r.churn_risk, r.engagement, r.best_send_hour, r.scored_at,
                                 r.churn_model_id) for r in s.scalars(select(SubscriberScore))}
    assert got == {a1: (alice, 0.123456789, 0.5, 23, T0, None), a2: (alice, None, 0.25, None, T0, None),
                   b1: (bob, 0.5, 0.5, 1, T0, None)}
