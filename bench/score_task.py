"""Scoring an account of 1,000,000 subscribers end to end, as the ``ml.score`` task
does it (issue: ml, item 5): ``ml.scoring.score_account`` reads the live models and
the history from PostgreSQL, scores everyone and upserts ``subscriber_scores``.

1. Seeds a fresh database with ``--subscribers`` simulated subscribers over
   ``--weeks`` weeks (``bench.ml_speed.seed``: COPY, then one INSERT ... SELECT).
2. Trains the three models on a smaller simulation in memory (``--train-subscribers``,
   a year) and records them as the account's live models (``ml.registry``), so the
   scoring runs the models, not the rules.
3. In a fresh process, times ``score_account`` in one transaction, the task's body,
   and prints the process's peak RSS (sampled from /proc).

Run: ``.venv/bin/python -m bench.score_task [--subscribers 1000000] [--weeks 8]``.
"""
from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import time
from datetime import datetime, timedelta

from bench import ROOT, PeakRss
from bench.ml_speed import cpu_seconds, seed


def live_models(url: str, account: int, end: datetime, subscribers: int) -> None:
    """Train on an in-memory simulation and record the models as the account's live ones."""
    from sqlalchemy.orm import Session

    from ml import api, registry
    from ml.simulator import simulate
    from models.db import make_engine

    started = time.perf_counter()
    sim = simulate(subscribers, futures=0, end=end, seed=3)
    trained = {kind: fit(sim.history, sim.end) for kind, fit in (
        ("churn", api.train_churn), ("engagement", api.train_engagement), ("send_time", api.train_send_time))}
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        for kind, model in trained.items():
            row = registry.queue_model(session, account, kind, end, end)
            registry.claim_for_training(session, row.id, end)
            made = registry.record_trained(session, row.id, model, end - timedelta(weeks=52), end)
            if made is not None and not made.live:
                registry.promote(session, account, made.id)  # the bench scores with models, even a rule's loser
    engine.dispose()
    print(f"trained on {subscribers:,} simulated subscribers and recorded live in"
          f" {time.perf_counter() - started:.0f} s", flush=True)


def score(url: str, account: int, end: str) -> None:
    """Phase 3, in a process of its own: the ml.score task's body."""
    from ml.scoring import score_account
    from models import db

    db.configure(url)
    cpu = cpu_seconds()
    started = time.perf_counter()
    with PeakRss() as memory, db.session_scope() as session:
        written = score_account(session, account, datetime.fromisoformat(end))
    took = time.perf_counter() - started
    # Sampled from /proc: getrusage's peak is carried over exec from the parent, which
    # held the simulation.
    print(f"ml.score end to end: {written:,} subscribers scored and written in {took:.1f} s"
          f" ({cpu_seconds() - cpu:.1f} s of this process's CPU); peak RSS {memory.peak_mib:,.0f} MiB"
          f" ({memory.start_mib:,.0f} before)", flush=True)

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--sends-per-week", type=float, default=1.0)
    parser.add_argument("--train-subscribers", type=int, default=20_000)
    parser.add_argument("--phase", choices=["all", "score"], default="all")
    parser.add_argument("--url")
    parser.add_argument("--account", type=int)
    parser.add_argument("--end")
    args = parser.parse_args()
    if args.phase == "score":
        return score(args.url, args.account, args.end)
    from tests.support.database import fresh_database

    with fresh_database(f"eseq_bench_score_{secrets.token_hex(3)}") as url:
        account, end, _count = seed(url, args.subscribers, args.sends_per_week, args.weeks)
        live_models(url, account, datetime.fromisoformat(end), args.train_subscribers)
        subprocess.run([sys.executable, "-m", "bench.score_task", "--phase", "score", "--url", url,
                        "--account", str(account), "--end", end], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
