"""Starting the platform's real processes for end-to-end tests, and stopping them
(including with kill -9, as a crashed host would)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def platform_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env.update({"PATH": f"{BIN}:{env.get('PATH', '')}", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


class Proc:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        self._log_file = self.log.open("ab")
        self.popen = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self._log_file, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a prefork worker's children too)."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 15) -> None:
        self.kill(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.popen.wait(5)
        self._log_file.close()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self, timeout: float = 60) -> None:
        """Until a Celery worker logs "ready."; a process that exits first is an error, with its log."""
        def ready() -> bool:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} did not start:\n{self.tail()}")
            return "ready." in self.log.read_text(errors="replace")

        wait_for(ready, timeout, f"{self.name} to start", interval=0.1, detail=self.tail)


def web_argv(port: int) -> list[str]:
    return [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "web.wsgi:app"]


def worker_argv(name: str, queues: str = "default,send,webhooks,ai,analytics,ml", pool: str = "threads",
                concurrency: int = 8, loglevel: str = "WARNING", prefetch: int | None = None) -> list[str]:
    """A worker's command line; ``prefetch`` the multiplier, when not celeryconfig's."""
    return [str(BIN / "celery"), "-A", "tasks.app", "worker", "-Q", queues, "--pool", pool, "--concurrency",
            str(concurrency), *(["--prefetch-multiplier", str(prefetch)] if prefetch else []), "-n", f"{name}@%h",
            "--loglevel", loglevel, "--without-gossip", "--without-mingle"]


def beat_argv(schedule_file: Path) -> list[str]:
    return [str(BIN / "celery"), "-A", "tasks.app", "beat", "--loglevel", "WARNING", "--schedule", str(schedule_file)]


def wait_healthy(port: int, timeout: float = 60) -> dict:
    last: list[Exception] = []

    def health() -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=3) as response:
                return json.loads(response.read())
        except Exception as exc:  # not up yet
            last[:] = [exc]
            return None

    return wait_for(health, timeout, f"web to become healthy on port {port}", interval=0.3,
                    detail=lambda: repr(last[0]) if last else "no answer yet")


@contextmanager
def running(procs: list[Proc]) -> Iterator[list[Proc]]:
    try:
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def call(port: int, method: str, path: str, body: object = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One JSON request to a web process on ``port``: its status and decoded body."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
        is_json = response.headers.get_content_type() == "application/json"
        return response.status, (json.loads(raw) if raw and is_json else raw)
