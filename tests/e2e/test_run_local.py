"""``make run`` on a bare machine: ``python -m scripts.run_local`` with no database or
Redis in the environment must bring up web, worker and beat on the embedded default
(SQLite + kombu's SQLAlchemy broker), run a task sent through that broker, and stop
every child when it is told to stop."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.support.smtp import free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

_PLATFORM_VARS = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ESEQ_ADMIN_TOKEN", "ESEQ_BROKER_PREFIX",
                  "PROMETHEUS_MULTIPROC_DIR")


def bare_env(var_dir: Path, port: int) -> dict[str, str]:
    """This machine's environment without any of the platform's service settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in _PLATFORM_VARS and not k.startswith(("CELERY_", "PYTEST_"))}
    env.update(ESEQ_VAR_DIR=str(var_dir), PORT=str(port), ESEQ_TICK_SECONDS="1", PYTHONUNBUFFERED="1")
    return env


def call(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
         ) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            status = response.status
            content_type = response.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        raw, status, content_type = exc.read(), exc.code, exc.headers.get_content_type()
    return status, json.loads(raw) if content_type == "application/json" and raw else raw


def wait_until(predicate: Any, timeout: float, what: str, log: Path) -> Any:
    """``wait_for`` that takes a refused connection (web not up yet) as "not yet" and
    shows run_local's output on timeout."""
    def attempt() -> Any:
        try:
            return predicate()
        except OSError:
            return None
    return wait_for(attempt, timeout, what, interval=0.3, detail=lambda: f"run_local output:\n{log.read_text()[-4000:]}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_make_run_serves_the_api_and_runs_tasks_on_the_embedded_default(tmp_path: Path) -> None:
    port = free_port()
    var_dir = tmp_path / "var"
    log = tmp_path / "run_local.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "scripts.run_local"], cwd=ROOT, env=bare_env(var_dir, port),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        health = wait_until(lambda: call(port, "GET", "/health"), 90, "/health", log)
        assert health == (200, {"status": "ok", "checks": {"database": "ok", "broker": "ok"}})
        assert call(port, "GET", "/docs")[0] == 200
        assert (var_dir / "eseq.sqlite").exists() and (var_dir / "broker.sqlite").exists()
        assert len((var_dir / "secret_key").read_text().strip()) >= 32

        output = log.read_text()
        api_key = re.search(r"API key \(shown once\): (\S+)", output).group(1)  # type: ignore[union-attr]
        assert f"http://localhost:{port}/docs" in output
        assert re.search(r"ESEQ_ADMIN_TOKEN=\S+", output)

        # A subscriber import is a task the web process sends through the embedded
        # broker; only the worker can complete it.
        auth = {"X-API-Key": api_key}
        status, accepted = call(port, "POST", "/api/v1/subscribers/import",
                                [{"email": f"local{i}@example.test"} for i in range(3)], auth)
        assert status == 202, accepted
        job = wait_until(lambda: (lambda r: r[1] if r[1].get("status") in ("completed", "failed") else None)(
            call(port, "GET", f"/api/v1/jobs/{accepted['job_id']}", headers=auth)), 60, "the import job", log)
        assert (job["status"], job["created"]) == ("completed", 3), job
        status, listing = call(port, "GET", "/api/v1/subscribers", headers=auth)
        assert status == 200
        assert {s["email"] for s in listing} == {f"local{i}@example.test" for i in range(3)}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # to run_local only: it must stop its children itself
        try:
            code = proc.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert code == 0, log.read_text()[-4000:]
    child_pids = [int(p) for p in re.findall(r"started \w+ \(pid (\d+)\)", log.read_text())]
    assert len(child_pids) == 3
    assert not [pid for pid in child_pids if alive(pid)], "children outlived run_local"
