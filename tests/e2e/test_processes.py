"""The Procfile is what operators run: its lines, started as written (under sh, as
honcho and Heroku do) against this run's database and Redis prefix, must give a
healthy platform whose worker and beat really talk to each other."""
from __future__ import annotations

import re
import subprocess
import urllib.request
from pathlib import Path

import pytest

import celeryconfig
from tests.conftest import METRICS_TOKEN, ROOT
from tests.support.prometheus import sample
from tests.support.processes import Proc, platform_env, running, wait_healthy
from tests.support.procfile import procfile, sh
from tests.support.smtp import free_port
from tests.support.waiting import wait_for


def test_the_procfile_has_release_web_beat_flower_and_one_worker_per_queue() -> None:
    entries = procfile()
    assert {"release", "web", "beat", "flower"} <= set(entries)
    workers = {name.removeprefix("worker_") for name in entries if name.startswith("worker_")}
    assert workers == set(celeryconfig.QUEUES)
    node_names = set()
    for queue in workers:
        command = entries[f"worker_{queue}"]
        assert re.search(rf"-Q {queue}(\s|$)", command), f"worker_{queue} must consume only {queue}"
        node_names.add(re.search(r"-n (\S+)", command).group(1))  # type: ignore[union-attr]
    assert len(node_names) == len(workers), "every worker needs its own node name"
    assert "--pool threads" in entries["worker_send"] and "--pool prefork" in entries["worker_ml"]
    assert "--concurrency 1" in entries["worker_ml"]
    assert "${PORT:-8000}" in entries["web"] and "web.wsgi:app" in entries["web"]


def metric(port: int, name: str, **labels: str) -> float:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    return sample(text, name, **labels) or 0.0


@pytest.mark.e2e
def test_the_procfiles_web_worker_and_beat_run_a_healthy_platform(tmp_path: Path) -> None:
    entries = procfile()
    port = free_port()
    env = platform_env(PORT=str(port), ESEQ_TICK_SECONDS="0.5", ESEQ_VAR_DIR=str(tmp_path / "var"),
                       PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"), ESEQ_LOG_LEVEL="INFO")
    release = subprocess.run(sh(entries["release"]), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert release.returncode == 0, release.stderr[-2000:]

    procs = [Proc(name, sh(entries[name]), env, tmp_path) for name in ("web", "worker_default", "beat")]
    with running(procs):
        health = wait_healthy(port)
        assert health["status"] == "ok"
        assert health["checks"]["database"] == "ok" and health["checks"]["broker"] == "ok"

        # Beat's ticks, run by the prefork worker, show up in the web process's /metrics:
        # the counts cross from worker children to web through Redis.
        def logs() -> str:
            return "\n\n".join(f"{p.name}:\n{p.tail()}" for p in procs)

        def two_ticks_counted() -> bool:
            assert all(p.popen.poll() is None for p in procs), logs()  # a crash fails now, not in 60 s
            return metric(port, "eseq_celery_tasks_total", task="sequencing.tick", state="succeeded") >= 2

        wait_for(two_ticks_counted, 60, "two beat ticks in /metrics", interval=0.5, detail=logs)
        assert (tmp_path / "var" / "celerybeat-schedule").exists() or list((tmp_path / "var").glob("celerybeat-*"))
    # SIGTERM is a clean stop for each of them (warm shutdown for the worker), not a crash.
    assert {p.name: p.popen.returncode for p in procs} == {"web": 0, "worker_default": 0, "beat": 0}
