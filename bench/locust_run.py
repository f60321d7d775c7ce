"""The web process under locust (``bench/locustfile.py``): requests/s and p50/p99 of
the open pixel, the click redirect, enrollment and an API read, at a stated load.

Seeds a throwaway database (one account, an active one-email sequence, ``--messages``
sent messages, each with its subscriber), signs an open and a click link for every
message with the run's SECRET_KEY, starts the Procfile's ``web`` line (gunicorn,
``WEB_CONCURRENCY`` 2 × ``WEB_THREADS`` 4 unless set) and runs locust headless
against it from this machine. Load: ``--users`` simulated users, started at
``--spawn-rate`` a second, for ``--duration`` seconds; each user sends its next
request as soon as its last is answered (the server's saturation point), or, with
``--rate R``, R requests a second (an offered load of users × R). Locust runs on the
same two cores as the server, so its own CPU is printed beside the server's.

Run: ``.venv/bin/python -m bench.locust_run [--users 20] [--spawn-rate 20] [--duration 60] [--rate 0]
[--messages 20000]``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from bench import ROOT, bench_account, environment

RUN, DB, ENV = environment()

import psutil  # noqa: E402
from sqlalchemy import text  # noqa: E402

from models import db  # noqa: E402
from tests.support import factories  # noqa: E402
from tests.support.database import fresh_database  # noqa: E402
from tests.support.processes import BIN, Proc, platform_env, wait_healthy  # noqa: E402
from tests.support.procfile import procfile, sh  # noqa: E402
from tests.support.smtp import free_port  # noqa: E402

STEPS = [{"type": "email", "subject": "Hello {{ subscriber.first_name }}", "text": "Hello"}]


def _seed(account: int, sequence: int, messages: int) -> list[int]:
    """``messages`` sent messages of ``sequence``, each to a subscriber of its own; their ids."""
    with db.get_engine().begin() as conn:
        conn.execute(text(
            "INSERT INTO subscribers (account_id, email, first_name, status, attributes, tags, created_at, updated_at)"
            " SELECT :a, 'reader' || g || '@bench.test', 'R', 'active', '{}', '[]', now(), now()"
            " FROM generate_series(1, :n) g"), {"a": account, "n": messages})
        conn.execute(text(
            "INSERT INTO messages (account_id, subscriber_id, sequence_id, idempotency_key, status, to_email, subject,"
            " attempts, crashes, meta, created_at, updated_at, sent_at)"
            " SELECT :a, id, :q, 'bench-' || id, 'sent', email, 'Hello R', 1, 0, '{}', now(), now(), now()"
            " FROM subscribers WHERE account_id = :a"), {"a": account, "q": sequence})
        conn.execute(text("ANALYZE subscribers; ANALYZE messages"))
        return list(conn.execute(text("SELECT id FROM messages WHERE account_id = :a ORDER BY id"),
                                 {"a": account}).scalars())


def _plan(account: dict, sequence: int, message_ids: list[int], folder: Path) -> Path:
    """The locustfile's plan: the API key, the sequence, and a signed open and click path per message."""
    from delivery.tracking import Tracker

    tracker = Tracker(ENV["SECRET_KEY"], "")  # paths: the locust host is the base
    plan = {"api_key": account["api_key"], "sequence_id": sequence,
            "opens": [tracker.open_url(account["id"], m) for m in message_ids],
            "clicks": [tracker.click_url(account["id"], m, f"https://shop.example.com/offer?m={m}")
                       for m in message_ids]}
    path = folder / "plan.json"
    path.write_text(json.dumps(plan))
    return path


def _cpu_seconds(root: psutil.Process) -> float:
    """User + system CPU of ``root`` and its children (gunicorn's workers)."""
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _children_cpu() -> float:
    """CPU of this process's children already waited for: across the run, locust's alone
    (the web process is waited for only after)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _recorded(account: int) -> dict[str, int]:
    """What the requests wrote: events by name, and enrollments (so a fast 4xx is not taken for speed)."""
    with db.get_engine().connect() as conn:
        counts = {str(name): int(n) for name, n in conn.execute(text(
            "SELECT name, count(*) FROM events WHERE account_id = :a GROUP BY name"), {"a": account})}
        counts["enrollments"] = int(conn.execute(text(
            "SELECT count(*) FROM enrollments WHERE account_id = :a"), {"a": account}).scalar_one())
    return counts


def _report(stats_csv: Path) -> int:
    """Prints the table; the number of requests answered."""
    rows = list(csv.DictReader(stats_csv.open()))
    print(f"{'endpoint':58} {'requests':>9} {'failed':>7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for row in rows:
        name = row["Name"] if row["Name"] != "Aggregated" else "all"
        print(f"{name:58} {int(row['Request Count']):>9,} {int(row['Failure Count']):>7,} "
              f"{float(row['Requests/s']):>8.1f} {row['50%']:>7} {row['99%']:>7}")
    return sum(int(row["Request Count"]) for row in rows if row["Name"] != "Aggregated")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--spawn-rate", type=float, default=20)
    parser.add_argument("--duration", type=int, default=60, help="seconds")
    parser.add_argument("--rate", type=float, default=0, help="requests/s per user (0: as fast as answered)")
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    if not (BIN / "locust").exists():
        raise SystemExit(f"locust is not installed beside {BIN / 'python'}: pip install -r requirements.txt")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    with fresh_database(DB), tempfile.TemporaryDirectory(prefix="eseq-locust-") as tmp:
        folder = Path(tmp)
        from web.app import create_app

        account = bench_account(create_app().test_client(), ENV)
        sequence = factories.sequence(account["id"], STEPS)
        plan = _plan(account, sequence, _seed(account["id"], sequence, args.messages), folder)
        print(f"seeded {args.messages:,} sent messages with signed open and click links (commit {commit})")

        port = free_port()
        env = platform_env(PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(folder / "metrics"))
        web = Proc("web", sh(procfile()["web"]), env, folder)
        try:
            wait_healthy(port)
            server = psutil.Process(web.popen.pid)
            load = "users as fast as answered" if not args.rate else f"{args.rate:g} requests/s each"
            print(f"locust: {args.users} users ({load}), spawned at {args.spawn_rate:g}/s, for {args.duration} s; "
                  f"web: the Procfile line, {env.get('WEB_CONCURRENCY', '2')} workers × "
                  f"{env.get('WEB_THREADS', '4')} threads; load average before {os.getloadavg()[0]:.1f}")
            server_cpu, locust_cpu, started = _cpu_seconds(server), _children_cpu(), time.perf_counter()
            locust = subprocess.Popen(
                [str(BIN / "locust"), "-f", str(ROOT / "bench" / "locustfile.py"), "--headless", "--only-summary",
                 "--host", f"http://127.0.0.1:{port}", "-u", str(args.users), "-r", str(args.spawn_rate),
                 "-t", f"{args.duration}s", "--csv", str(folder / "run"), "--loglevel", "WARNING"],
                cwd=ROOT, env={**env, "ESEQ_LOCUST_PLAN": str(plan), "ESEQ_LOCUST_RATE": str(args.rate)},
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            _, errors = locust.communicate(timeout=args.duration + 120)
            locust_cpu = _children_cpu() - locust_cpu
            seconds = time.perf_counter() - started
            server_cpu = _cpu_seconds(server) - server_cpu
            if locust.returncode not in (0, 1):  # 1: some requests failed, reported below
                raise SystemExit(f"locust failed ({locust.returncode}):\n{errors[-3000:]}")
        finally:
            web.stop()
        requests = _report(folder / "run_stats.csv")
        failures = list(csv.DictReader((folder / "run_failures.csv").open()))
        for row in failures[:5]:
            print(f"failure: {row['Name']}: {row['Error']} ×{row['Occurrences']}")
        print(f"web CPU {server_cpu:.1f} s over {seconds:.0f} s ({server_cpu / seconds:.2f} cores, "
              f"{server_cpu / max(requests, 1) * 1000:.1f} ms a request), locust's "
              f"{locust_cpu / seconds:.2f} cores; "
              f"load average after {os.getloadavg()[0]:.1f}")
        print("recorded:", ", ".join(f"{k} {v:,}" for k, v in sorted(_recorded(account["id"]).items())))


if __name__ == "__main__":
    main()
