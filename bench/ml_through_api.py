"""The models' quality through the service, as an outside check would measure it.

A simulated account (ml.simulator) goes in only through the API: its subscribers
with their time zones (``POST /api/v1/subscribers/import``), then its history as
CSV (``POST /api/v1/events/import``), both jobs run by a real ``default`` worker;
then ``POST /api/v1/ml/models`` for churn, engagement and send time with ``as_of``
at the end of the history, trained by a real ``ml`` worker started from the
Procfile's line; then the scores read back as ``GET /api/v1/ml/scores?format=csv``
and compared with the simulator's truth as bench.ml_quality compares the scores
it computes in process: churn ROC AUC against the oracle's and the simple rules',
engagement against the hidden state, the best hour against the true one.

    python -m bench.ml_through_api [--subscribers 50000] [--seed 2] [--sends-per-week 1]
"""
from __future__ import annotations

import argparse
import csv
import io
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import bench_account, environment

RUN, DB, ENV = environment()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from bench.ml_quality import circular_distance  # noqa: E402
from ml import api  # noqa: E402
from ml.churn import rule_values  # noqa: E402
from ml.simulator import Simulation, simulate  # noqa: E402
from models import db  # noqa: E402
from tests.support.database import fresh_database  # noqa: E402
from tests.support.procfile import procfile, sh  # noqa: E402
from tests.support.processes import Proc, platform_env, running, worker_argv  # noqa: E402
from tests.support.waiting import wait_for, wait_for_job  # noqa: E402

KINDS = ("churn", "engagement", "send_time")


class Tenant:
    """What tests.support.waiting.wait_for_job needs of an account: its headers."""

    def __init__(self, api_key: str) -> None:
        self.headers = {"X-API-Key": api_key}


def address(subscriber_id: int) -> str:
    return f"s{subscriber_id}@sim.example"


def write_files(sim: Simulation, folder: Path) -> tuple[Path, Path]:
    """The subscribers (address, time zone) and the history as the CSV files an
    account migrating from another platform would upload."""
    people = folder / "subscribers.csv"
    subscribers = sim.history.subscribers
    pd.DataFrame({"email": [address(i) for i in subscribers.index],
                  "timezone": subscribers["timezone"].fillna("")}).to_csv(people, index=False)
    history = folder / "events.csv"
    events = sim.history.events
    pd.DataFrame({"email": "s" + events["subscriber_id"].astype(str) + "@sim.example",
                  "name": events["name"].astype(str),
                  "occurred_at": events["occurred_at"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                  "value": events["value"]}).to_csv(history, index=False, float_format="%.2f")
    return people, history


def upload(client: Any, tenant: Tenant, url: str, path: Path) -> dict[str, Any]:
    """One file posted as it is (streamed), its job followed until it ends."""
    with path.open("rb") as body:
        response = client.post(url, input_stream=body, content_length=path.stat().st_size, content_type="text/csv",
                               headers=tenant.headers)
    assert response.status_code == 202, response.get_json()
    job = wait_for_job(client, tenant, response.get_json()["job_id"], timeout=3600)
    assert job["status"] == "completed", job
    return job


def train(client: Any, tenant: Tenant, sim: Simulation) -> dict[str, dict[str, Any]]:
    """A run of each kind as of the history's end, each followed until it is ready."""
    runs = {}
    for kind in KINDS:
        response = client.post("/api/v1/ml/models", json={"kind": kind, "as_of": sim.end.isoformat()},
                               headers=tenant.headers)
        assert response.status_code == 202, response.get_json()
        runs[kind] = response.get_json()["id"]

    def ready(model_id: int) -> dict[str, Any] | None:
        run = client.get(f"/api/v1/ml/models/{model_id}", headers=tenant.headers).get_json()
        assert run["status"] != "failed", run
        return run if run["status"] == "ready" else None

    return {kind: wait_for(lambda: ready(model_id), 3600, f"the {kind} run", interval=1.0)
            for kind, model_id in runs.items()}


def scores_csv(client: Any, tenant: Tenant) -> pd.DataFrame:
    response = client.get("/api/v1/ml/scores?format=csv", headers=tenant.headers)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    frame = pd.DataFrame(rows)
    frame["subscriber_id"] = frame["email"].str.slice(1).str.split("@").str[0].astype("int64")
    for column in ("churn_risk", "engagement"):
        frame[column] = frame[column].astype(float)
    frame["best_send_hour"] = pd.to_numeric(frame["best_send_hour"])
    return frame.set_index("subscriber_id")


def report(sim: Simulation, scores: pd.DataFrame, runs: dict[str, dict[str, Any]]) -> None:
    truth = sim.truth.rename(columns={"engagement": "hidden_engagement"}).join(scores, how="left")
    live = truth[truth["live"]]
    missing = int(live["churn_risk"].isna().sum())
    labels = live["churned"].to_numpy()
    model_auc = roc_auc_score(labels, live["churn_risk"].fillna(1.0))
    oracle_auc = roc_auc_score(labels, live["churn_probability"])
    frame = api.features(sim.history, sim.end).loc[live.index]
    rules = {name: roc_auc_score(labels, values) for name, values in rule_values(frame).items()}
    metrics = runs["churn"].get("metrics") or {}
    print(f"  churn ({metrics.get('scored_by')}, {metrics.get('estimator')}): AUC {model_auc:.4f}, oracle"
          f" {oracle_auc:.4f}, ratio {model_auc / oracle_auc:.4f}; rules "
          + ", ".join(f"{k} {v:.4f}" for k, v in rules.items())
          + f"; beats every rule: {model_auc > max(rules.values())}; live subscribers without a score: {missing}")
    rho = spearmanr(live["engagement"], live["hidden_engagement"], nan_policy="omit").statistic
    print(f"  engagement: Spearman with the hidden engagement {rho:.4f}")
    five = truth[(truth["opens"] >= 5) & truth["best_send_hour"].notna()]
    hits = (circular_distance(five["best_send_hour"].to_numpy(), five["true_hour"].to_numpy()) <= 1).mean()
    rule = (circular_distance(np.full(len(five), 10), five["true_hour"].to_numpy()) <= 1).mean()
    print(f"  send time: within 1 h of the true hour for {hits:.4f} of {len(five):,} subscribers with >= 5 opens"
          f" (fixed 9-12h rule {rule:.4f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=50_000)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--sends-per-week", type=float, default=1.0)
    args = parser.parse_args()

    sim = simulate(args.subscribers, weeks=args.weeks, seed=args.seed, sends_per_week=args.sends_per_week)
    print(f"seed {args.seed}: {args.subscribers:,} subscribers, {args.weeks} weeks, {args.sends_per_week} sends/week,"
          f" {len(sim.history.events):,} events", flush=True)
    with fresh_database(DB) as url, tempfile.TemporaryDirectory() as tmp:
        db.configure(url)
        from web.app import create_app

        client = create_app().test_client()
        tenant = Tenant(bench_account(client, ENV)["api_key"])
        env = platform_env(DATABASE_URL=url)
        logs = Path(tmp)
        workers = [Proc("default", worker_argv("default", queues="default", pool="prefork", concurrency=1), env, logs),
                   Proc("ml", sh(procfile()["worker_ml"]), env, logs)]
        with running(workers):
            people, history = write_files(sim, logs)
            started = time.perf_counter()
            job = upload(client, tenant, "/api/v1/subscribers/import", people)
            print(f"  subscribers imported: {job['created']:,} in {time.perf_counter() - started:.0f} s", flush=True)
            started = time.perf_counter()
            job = upload(client, tenant, "/api/v1/events/import", history)
            print(f"  history imported: {job['result']} in {time.perf_counter() - started:.0f} s", flush=True)
            started = time.perf_counter()
            runs = train(client, tenant, sim)
            print(f"  three runs trained and the account scored in {time.perf_counter() - started:.0f} s", flush=True)
            report(sim, scores_csv(client, tenant), runs)
        db.get_engine().dispose()


if __name__ == "__main__":
    main()
