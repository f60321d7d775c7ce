"""What one publish costs on each broker: tasks published one after another from one
thread (as the tick dispatches), on Redis, and on RabbitMQ's quorum queues with and
without publisher confirms (the platform turns them on: docs/operations.md).

    python -m bench.broker_publish [count]

Each variant runs in its own process (celeryconfig reads the broker at import); the
RabbitMQ ones in a vhost made for the run (rabbitmqctl, so as root), deleted after.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from bench import ROOT, environment, percentiles

AMQP = "amqp://guest:guest@127.0.0.1:5672/"


def child(count: int, confirm: bool) -> None:
    """In the variant's process: publish ``count`` tasks to the send queue, print the figures."""
    from tasks.app import app
    from tasks.broker import declare_every_queue

    if not confirm and app.conf.broker_url.startswith("amqp"):
        app.conf.broker_transport_options = {}
    if app.conf.broker_url.startswith("amqp"):
        declare_every_queue(app.connection_for_write(), app.amqp.queues.values())
    for _ in range(200):  # warm: the producer pool, the connection
        app.send_task("sending.bench_probe", args=[[1, 2, 3]])
    times = []
    started = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        app.send_task("sending.bench_probe", args=[[i, i + 1, i + 2]])
        times.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - started
    p50, p99 = percentiles(times)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("send")
    print(json.dumps({"per_s": count / elapsed, "p50_ms": p50, "p99_ms": p99}))


def run(count: int, label: str, env: dict[str, str], confirm: bool) -> None:
    out = subprocess.run([sys.executable, "-m", "bench.broker_publish", "--child", str(count), str(int(confirm))],
                         cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True, text=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    print(f"{label:<34} {got['per_s']:>8.0f} publishes/s  p50 {got['p50_ms']:.3f} ms  p99 {got['p99_ms']:.3f} ms")


def main(count: int) -> None:
    run_id, _, env = environment()
    print(f"{count} publishes, one thread; load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    run(count, "redis", {**env, "CELERY_BROKER_URL": env["REDIS_URL"]}, True)
    vhost = f"eseq-bench-{run_id}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    try:
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
                       check=True, capture_output=True)
        amqp = {**env, "CELERY_BROKER_URL": AMQP + vhost}
        run(count, "rabbitmq quorum, confirms (default)", amqp, True)
        run(count, "rabbitmq quorum, no confirms", amqp, False)
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=True, capture_output=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(int(sys.argv[2]), sys.argv[3] == "1")
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
