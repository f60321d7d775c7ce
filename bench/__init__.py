"""Benchmarks; ``environment`` is the prelude the database-backed ones run first, ``timed``
their p50/p99 of repeated calls."""
from __future__ import annotations

import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def environment(db: str | None = None) -> tuple[str, str, dict[str, str]]:
    """Set the platform's environment for one bench run, before the platform is imported.

    A run id names the run's broker prefix and, unless ``db`` is given, its database
    (``eseq_bench_<run>``). Returns ``(run, db, env)``; ``env`` is what was set.
    """
    run = secrets.token_hex(3)
    db = db or f"eseq_bench_{run}"
    env = {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{db}", "REDIS_URL": "redis://127.0.0.1:6379/0",
           "ESEQ_BROKER_PREFIX": f"eseq-bench-{run}:", "SECRET_KEY": "bench-secret-key-0123456789abcdef",
           "ESEQ_ADMIN_TOKEN": "bench-admin-token-0123456789abcdef", "ESEQ_RATE_LIMIT": "1000000 per minute",
           "ESEQ_LOG_LEVEL": "WARNING"}
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    return run, db, env


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p99 of ``values``."""
    ordered = sorted(values)
    return statistics.median(ordered), ordered[max(int(len(ordered) * 0.99) - 1, 0)]


def timed(call: Callable[[], object], requests: int) -> tuple[float, float]:
    """p50 and p99 in milliseconds of ``requests`` calls, one after another."""
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return percentiles(times)


def bench_account(client: Any, env: dict[str, str]) -> dict[str, Any]:
    """An account made through the API, as an operator makes one: its ``id`` and ``api_key``."""
    return client.post("/api/v1/accounts", json={"name": "Bench", "from_email": "b@bench.test", "from_name": "B"},
                       headers={"Authorization": f"Bearer {env['ESEQ_ADMIN_TOKEN']}"}).get_json()


class PeakRss:
    """The peak resident memory of this process while the ``with`` block runs,
    sampled every 20 ms from /proc (getrusage's peak covers the whole process life,
    seeding included): ``.start_mib``, ``.peak_mib``."""

    def __init__(self) -> None:
        self.start_mib = self.peak_mib = 0.0
        self._stop = False

    @staticmethod
    def now_mib() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def _sample(self) -> None:
        while not self._stop:
            self.peak_mib = max(self.peak_mib, self.now_mib())
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        import threading

        self.start_mib = self.peak_mib = self.now_mib()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join()
        self.peak_mib = max(self.peak_mib, self.now_mib())


def process_cpu(pid: int) -> float:
    """CPU seconds a process on this host (a PostgreSQL backend, a worker) has used
    so far, from /proc: steadier than wall time on a machine whose speed drifts."""
    stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """CPU seconds every PostgreSQL process on this host has used so far: all the
    backends a job's pooled connections went through, and the server's own WAL
    writer and checkpointer, which write what the job inserted. (One backend's
    count misses chunks whose transaction took another pooled connection.)"""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as comm:
                if comm.read().strip() != "postgres":
                    continue
            total += process_cpu(int(entry))
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended meanwhile
    return total
