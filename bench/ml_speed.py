"""How fast the ml models train and score, and in how much memory.

1. Simulates an account (ml.simulator): ``--subscribers`` over 52 weeks at
   ``--sends-per-week`` (100,000 and 1.8 give about 10,000,000 events), writes it to a
   fresh PostgreSQL database with COPY (staging table, then one INSERT ... SELECT).
2. In a fresh process, as the ml worker would: ``load_history`` from PostgreSQL,
   train churn, engagement and send time, score everyone; prints each step's time
   and the process's peak RSS (getrusage), and saves the models.
3. In another fresh process: simulates ``--score-subscribers`` (1,000,000) over 8
   weeks in memory, then times ``score_all`` with the saved models (features from
   all their events, then the three scores).

Run: ``.venv/bin/python -m bench.ml_speed [--subscribers 100000] [--score-subscribers 1000000]``.
"""
from __future__ import annotations

import argparse
import io
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """This process's CPU time: on a shared machine, wall time also counts the waits."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def seed(url: str, subscribers: int, sends_per_week: float, weeks: int = 52) -> tuple[int, str, int]:
    """The simulated account (``weeks`` of history) written to ``url``; its id, the
    history's end and event count."""
    from sqlalchemy import text

    from models.db import make_engine
    from ml.simulator import simulate

    started = time.perf_counter()
    sim = simulate(subscribers, weeks=weeks, sends_per_week=sends_per_week, futures=0)
    events, subs = sim.history.events, sim.history.subscribers
    print(f"simulated {len(subs):,} subscribers, {len(events):,} events in {time.perf_counter() - started:.0f} s",
          flush=True)
    started = time.perf_counter()
    engine = make_engine(url)
    with engine.begin() as c:
        account = c.execute(text("INSERT INTO accounts (name, from_email, from_name, created_at) VALUES"
                                 " ('Bench', 'b@bench.test', 'Bench', now()) RETURNING id")).scalar_one()
        raw = c.connection.dbapi_connection
        frame = subs.reset_index()
        buffer = io.StringIO()
        frame.assign(account_id=account, email=frame["subscriber_id"].astype(str) + "@bench.test",
                     created_us=frame["created_at"].astype("int64") // 1000)[
            ["subscriber_id", "account_id", "email", "timezone", "status", "created_us"]].to_csv(buffer, index=False,
                                                                                                 header=False)
        buffer.seek(0)
        with raw.cursor() as cur:
            cur.execute("CREATE TEMP TABLE sim_subs (sim bigint, account_id bigint, email text, timezone text,"
                        " status text, us bigint)")
            cur.copy_expert("COPY sim_subs FROM STDIN WITH (FORMAT csv)", buffer)
            cur.execute("CREATE TEMP TABLE sim_ids AS WITH ins AS (INSERT INTO subscribers (account_id, email, timezone,"
                        " status, attributes, tags, created_at, updated_at) SELECT account_id, email, timezone, status,"
                        " '{}', '[]', to_timestamp(us / 1e6), now() FROM sim_subs ORDER BY sim RETURNING id, email)"
                        " SELECT id, split_part(email, '@', 1)::bigint AS sim FROM ins")
            cur.execute("CREATE UNIQUE INDEX ON sim_ids (sim)")
            cur.execute("CREATE TEMP TABLE sim_events (sim bigint, name text, us bigint, value real)")
            with tempfile.TemporaryFile("w+") as f:
                out = events.assign(us=events["occurred_at"].astype("int64") // 1000)[["subscriber_id", "name", "us", "value"]]
                out.to_csv(f, index=False, header=False, chunksize=1_000_000)
                f.seek(0)
                cur.copy_expert("COPY sim_events FROM STDIN WITH (FORMAT csv)", f)
            print(f"  staged in {time.perf_counter() - started:.0f} s", flush=True)
            cur.execute("ANALYZE sim_events; ANALYZE sim_ids")
            # Seeding only: the rows are consistent by construction, so skip the per-row
            # foreign-key triggers (superuser; the bench database is thrown away after).
            cur.execute("SET LOCAL session_replication_role = replica")
            cur.execute("INSERT INTO events (account_id, subscriber_id, name, source, properties, value, occurred_at,"
                        f" created_at) SELECT {int(account)}, i.id, e.name, 'import', '{{}}', e.value,"
                        " to_timestamp(e.us / 1e6), now() FROM sim_events e JOIN sim_ids i ON i.sim = e.sim"
                        " ORDER BY i.id, e.name, e.us")  # the (subscriber, name, time) index then grows at its end
    engine.dispose()
    print(f"wrote them to PostgreSQL with COPY in {time.perf_counter() - started:.0f} s", flush=True)
    return account, sim.end.isoformat(), len(events)


def train(url: str, account: int, end: str, models_path: str) -> None:
    """Phase 2, in a process of its own."""
    import joblib

    from ml import api
    from models.db import make_engine
    from sqlalchemy.orm import Session

    as_of = datetime.fromisoformat(end)
    total = time.perf_counter()
    started = time.perf_counter()
    engine = make_engine(url)
    with Session(engine) as session:
        history = api.load_history(session, account, as_of)
    print(f"load_history: {len(history.events):,} events, {len(history.subscribers):,} subscribers in"
          f" {time.perf_counter() - started:.1f} s (peak RSS so far {peak_rss_mib():,.0f} MiB)", flush=True)
    models = {}
    for kind, fit in (("churn", api.train_churn), ("engagement", api.train_engagement),
                      ("send_time", api.train_send_time)):
        started = time.perf_counter()
        cpu = cpu_seconds()
        models[kind] = fit(history, as_of)
        print(f"train_{kind}: {time.perf_counter() - started:.1f} s ({cpu_seconds() - cpu:.1f} s of CPU) ({models[kind].metrics['scored_by']})", flush=True)
    started = time.perf_counter()
    scores = api.score_all(models, history, as_of)
    print(f"score_all: {len(scores):,} subscribers in {time.perf_counter() - started:.1f} s", flush=True)
    print(f"load + train + score: {time.perf_counter() - total:.1f} s ({cpu_seconds():.1f} s of CPU, all of this"
          f" process); peak RSS {peak_rss_mib():,.0f} MiB", flush=True)
    sizes = {kind: len(api.dump(m)) for kind, m in models.items()}
    print("artifact sizes: " + ", ".join(f"{k} {v / 1024:,.0f} KiB" for k, v in sizes.items()), flush=True)
    joblib.dump(models, models_path)


def score(models_path: str, subscribers: int) -> None:
    """Phase 3, in a process of its own."""
    import joblib

    from ml import api
    from ml.simulator import simulate

    models = joblib.load(models_path)
    sim = simulate(subscribers, weeks=8, futures=0, seed=7)
    print(f"simulated {subscribers:,} subscribers over 8 weeks: {len(sim.history.events):,} events", flush=True)
    rss_before, cpu = peak_rss_mib(), cpu_seconds()
    started = time.perf_counter()
    scores = api.score_all(models, sim.history, sim.end)
    print(f"score_all: {len(scores):,} subscribers in {time.perf_counter() - started:.1f} s"
          f" ({cpu_seconds() - cpu:.1f} s of CPU)"
          f" (peak RSS {peak_rss_mib():,.0f} MiB, {rss_before:,.0f} before scoring)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--sends-per-week", type=float, default=1.8)
    parser.add_argument("--score-subscribers", type=int, default=1_000_000)
    parser.add_argument("--phase", choices=["all", "train", "score"], default="all")
    parser.add_argument("--url")
    parser.add_argument("--account", type=int)
    parser.add_argument("--end")
    parser.add_argument("--models")
    args = parser.parse_args()
    if args.phase == "train":
        return train(args.url, args.account, args.end, args.models)
    if args.phase == "score":
        return score(args.models, args.score_subscribers)
    from tests.support.database import fresh_database

    me = [sys.executable, "-m", "bench.ml_speed"]
    with tempfile.TemporaryDirectory() as folder, fresh_database(f"eseq_bench_ml_{secrets.token_hex(3)}") as url:
        models = os.path.join(folder, "models.joblib")
        account, end, _count = seed(url, args.subscribers, args.sends_per_week)
        subprocess.run([*me, "--phase", "train", "--url", url, "--account", str(account), "--end", end,
                        "--models", models], cwd=ROOT, check=True)
        subprocess.run([*me, "--phase", "score", "--models", models, "--score-subscribers",
                        str(args.score_subscribers)], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
