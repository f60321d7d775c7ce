"""``make run`` on a bare machine: ``python -m scripts.run_local`` with no database or
Redis in the environment must bring up web, worker and beat on the embedded default
(SQLite + kombu's SQLAlchemy broker), run a task sent through that broker, deliver
mail to the development catcher, and stop every child when it is told to stop. The
README's walkthrough is run here as written, so it cannot rot."""
from __future__ import annotations

import json
import os
import re
import shutil
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
                  "PROMETHEUS_MULTIPROC_DIR", "PUBLIC_BASE_URL", "ESEQ_SECRETS_KEYS", "SMTP_HOST", "SMTP_PORT",
                  "ESEQ_DEV_SMTP_PORT")


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


def start(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, Path, Path]:
    port = free_port()
    var_dir = tmp_path / "var"
    log = tmp_path / "run_local.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "scripts.run_local"], cwd=ROOT, env=bare_env(var_dir, port),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, port, var_dir, log


def stop(proc: subprocess.Popen[bytes], log: Path) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # to run_local only: it must stop its children itself
    try:
        return proc.wait(40)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def readme_walkthrough() -> str:
    """The README's walkthrough: the first sh block after its heading."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Walkthrough"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="the README's walkthrough uses curl and jq")
def test_the_readme_walkthrough_runs_as_written_and_its_mail_is_caught(tmp_path: Path) -> None:
    proc, port, var_dir, log = start(tmp_path)
    try:
        assert wait_until(lambda: call(port, "GET", "/health"), 90, "/health", log)[0] == 200
        script = readme_walkthrough()
        assert script.count("http://localhost:8000") == 1  # only BASE names the address
        script = script.replace("http://localhost:8000", f"http://localhost:{port}")
        # Run from a folder whose var/ is this run's, as the README's reader runs it from the project's.
        walk = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True,
                              text=True, timeout=180)
        assert walk.returncode == 0, f"{walk.stdout}\n{walk.stderr}\n{log.read_text()[-3000:]}"
        assert '"active"' in walk.stdout and '"enrolled": 1' in walk.stdout
        assert '"provider": "dev-catcher"' in walk.stdout

        status, page = call(port, "GET", "/dev/mail")
        assert status == 200
        page = page.decode()
        assert "Welcome, Ada" in page and "In case you missed it" in page and "ada@example.com" in page
        welcome = re.search(r'href="(/dev/mail/[^"]+)">Welcome, Ada<', page).group(1)  # type: ignore[union-attr]
        status, shown = call(port, "GET", welcome)
        assert status == 200 and "Hi Ada," in shown.decode() and "<iframe sandbox srcdoc=" in shown.decode()
        assert len(list((var_dir / "dev_mail" / "new").iterdir())) == 2
        assert re.search(r"development delivery: caught 'Welcome, Ada' for ada@example.com", log.read_text())
    finally:
        code = stop(proc, log)
    assert code == 0, log.read_text()[-4000:]


def test_make_run_serves_the_api_and_runs_tasks_on_the_embedded_default(tmp_path: Path) -> None:
    proc, port, var_dir, log = start(tmp_path)
    try:
        health = wait_until(lambda: call(port, "GET", "/health"), 90, "/health", log)
        assert health == (200, {"status": "ok", "checks": {"database": "ok", "broker": "ok"},
                                "delivery": "development catcher"})
        assert call(port, "GET", "/docs")[0] == 200
        assert (var_dir / "eseq.sqlite").exists() and (var_dir / "broker.sqlite").exists()
        assert len((var_dir / "secret_key").read_text().strip()) >= 32

        output = log.read_text()
        api_key = re.search(r"API key \(shown once\): (\S+)", output).group(1)  # type: ignore[union-attr]
        assert f"http://localhost:{port}/docs" in output
        assert re.search(r"ESEQ_ADMIN_TOKEN=\S+", output)
        assert (f"development delivery: mail is caught at http://localhost:{port}/dev/mail, nothing leaves this "
                "machine") in output

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
        code = stop(proc, log)
    assert code == 0, log.read_text()[-4000:]
    child_pids = [int(p) for p in re.findall(r"started \w+ \(pid (\d+)\)", log.read_text())]
    assert len(child_pids) == 3
    assert not [pid for pid in child_pids if alive(pid)], "children outlived run_local"
