"""Benchmark of the ml service's score writes on PostgreSQL (issue: ml, item 5).

On a database of its own with ``--subscribers`` subscribers (seeded in SQL), times
``ml.scoring.write_scores`` as the ``ml.score`` task runs it: the first scoring
(every row inserted) and a rescoring (every row replaced), each in one
transaction; then the scores CSV (``GET /api/v1/ml/scores?format=csv``) through the
Flask app in process, read block by block as a client would: its time, when its
first bytes came, and how much the process's memory grew while it was served. The models' own scoring (features and estimators) is
measured by the ml domain's benchmarks; this is the part around them.

Run: ``.venv/bin/python -m bench.scores_write [--subscribers 1000000]``.
"""
from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

from bench import PeakRss, bench_account, environment

RUN, DB, ENV = environment()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sqlalchemy import text  # noqa: E402

from models import db  # noqa: E402
from tests.support.database import fresh_database  # noqa: E402


def _frame(ids: list[int], shift: float) -> pd.DataFrame:
    n = np.arange(len(ids))
    return pd.DataFrame({"subscriber_id": ids, "churn_risk": (n % 1000) / 1000 + shift,
                         "engagement": 1 - (n % 1000) / 1000, "best_send_hour": (n % 24).astype("float64")})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    args = parser.parse_args()
    with fresh_database(DB) as url:
        from ml.scoring import write_scores
        from web.app import create_app

        client = create_app().test_client()
        created = bench_account(client, ENV)
        account = created["id"]
        with db.get_engine().begin() as c:
            c.execute(text("INSERT INTO subscribers (account_id, email, status, tags, attributes, created_at, updated_at)"
                           " SELECT :a, 'u' || g || '@bench.test', 'active', '[]', '{}', now(), now()"
                           " FROM generate_series(1, :n) g"), {"a": account, "n": args.subscribers})
            ids = list(c.execute(text("SELECT id FROM subscribers WHERE account_id = :a ORDER BY id"),
                                 {"a": account}).scalars())
        as_of = datetime.now(timezone.utc)
        for label, shift in (("first scoring (insert)", 0.0), ("rescoring (replace)", -0.0005)):
            frame = _frame(ids, shift)
            started = time.perf_counter()
            with db.session_scope() as s:
                write_scores(s, account, as_of, {"churn": 1, "engagement": 2, "send_time": None}, frame)
            took = time.perf_counter() - started
            print(f"{label}: {len(frame):,} rows in {took:.1f} s = {len(frame) / took:,.0f} rows/s")
        started = time.perf_counter()
        with PeakRss() as memory:
            response = client.get("/api/v1/ml/scores", query_string={"format": "csv"},
                                  headers={"X-API-Key": created["api_key"]}, buffered=False)
            first = None
            lines = size = 0
            for block in response.response:  # as a client reads it, block by block
                first = first or time.perf_counter() - started
                lines += block.count(b"\n") if isinstance(block, bytes) else block.count("\n")
                size += len(block)
            response.close()
        took = time.perf_counter() - started
        print(f"scores CSV: {lines - 1:,} rows, {size / 2**20:.0f} MiB in {took:.1f} s = {(lines - 1) / took:,.0f}"
              f" rows/s, first bytes after {first:.2f} s; RSS {memory.start_mib:,.0f} MiB before, peak"
              f" {memory.peak_mib:,.0f} MiB (+{memory.peak_mib - memory.start_mib:,.0f})")


if __name__ == "__main__":
    main()
