"""The models' quality through the service, as an outside check would measure it.

A simulated account (ml.simulator) goes in only through the API: its subscribers
with their time zones (``POST /api/v1/subscribers/import``), then its history as
CSV (``POST /api/v1/events/import``), both jobs run by a real ``default`` worker;
then ``POST /api/v1/ml/models`` for churn, engagement and send time with ``as_of``
at the end of the history, trained by a real ``ml`` worker started from the
Procfile's line; then the scores read back as ``GET /api/v1/ml/scores?format=csv``
and compared with the simulator's truth by ``bench.ml_quality.compare``, as that
bench compares the scores it computes in process: churn ROC AUC against the
oracle's and the simple rules', engagement against the hidden state, the best hour
against the true one.

    python -m bench.ml_through_api [--subscribers 50000] [--seed 2] [--sends-per-week 1]
"""
from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench import bench_account, environment

RUN, DB, ENV = environment()

import pandas as pd  # noqa: E402

from bench.ml_quality import compare  # noqa: E402
from ml.simulator import Simulation, simulate  # noqa: E402
from models import db  # noqa: E402
from tests.support.database import fresh_database  # noqa: E402
from tests.support.procfile import procfile, sh  # noqa: E402
from tests.support.processes import Proc, platform_env, running, worker_argv  # noqa: E402
from tests.support.waiting import wait_for, wait_for_job  # noqa: E402

KINDS = ("churn", "engagement", "send_time")


def addresses(sim: Simulation) -> pd.Series:
    """Each simulated subscriber's address, by subscriber_id: what the files carry."""
    ids = sim.history.subscribers.index
    return pd.Series("s" + ids.astype(str) + "@sim.example", index=ids)


def write_files(sim: Simulation, folder: Path) -> tuple[Path, Path]:
    """The subscribers (address, time zone) and the history as the CSV files an
    account migrating from another platform would upload."""
    email = addresses(sim)
    people = folder / "subscribers.csv"
    pd.DataFrame({"email": email, "timezone": sim.history.subscribers["timezone"].fillna("")}).to_csv(people,
                                                                                                    index=False)
    history = folder / "events.csv"
    events = sim.history.events
    pd.DataFrame({"email": email.loc[events["subscriber_id"]].to_numpy(), "name": events["name"].astype(str),
                  "occurred_at": events["occurred_at"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                  "value": events["value"]}).to_csv(history, index=False, float_format="%.2f")
    return people, history


def upload(client: Any, tenant: Any, url: str, path: Path) -> dict[str, Any]:
    """One file posted as it is (streamed), its job followed until it ends."""
    with path.open("rb") as body:
        response = client.post(url, input_stream=body, content_length=path.stat().st_size, content_type="text/csv",
                               headers=tenant.headers)
    assert response.status_code == 202, response.get_json()
    job = wait_for_job(client, tenant, response.get_json()["job_id"], timeout=3600)
    assert job["status"] == "completed", job
    return job


def train(client: Any, tenant: Any, sim: Simulation) -> dict[str, dict[str, Any]]:
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


def scores_csv(client: Any, tenant: Any, sim: Simulation) -> pd.DataFrame:
    """``GET /ml/scores?format=csv``, by the simulated subscriber_id of each address."""
    response = client.get("/api/v1/ml/scores?format=csv", headers=tenant.headers)
    assert response.status_code == 200
    frame = pd.read_csv(io.StringIO(response.get_data(as_text=True)))
    email = addresses(sim)
    ids = pd.Series(email.index, index=email.to_numpy())
    return frame.assign(subscriber_id=ids.loc[frame["email"]].to_numpy()).set_index("subscriber_id")


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
        tenant = SimpleNamespace(headers={"X-API-Key": bench_account(client, ENV)["api_key"]})
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
            compare(sim, scores_csv(client, tenant, sim), runs["churn"]["metrics"])
        db.get_engine().dispose()


if __name__ == "__main__":
    main()
