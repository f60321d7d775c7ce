"""Flower as the Procfile runs it, in front of every worker pool the Procfile runs:
FLOWER_BASIC_AUTH (read by Flower from the environment) must guard its pages and
its API, and the dashboard must show each pool's worker by its Procfile node name,
consuming only its own queue."""
from __future__ import annotations

import base64
import json
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import celeryconfig
from tests.support.processes import Proc, platform_env, running
from tests.support.procfile import procfile, sh
from tests.support.smtp import free_port
from tests.support.waiting import wait_for

# Each pool at its smallest, so six workers fit beside the other engineers' runs on two cores.
SMALL_POOLS = {"DEFAULT_CONCURRENCY": "1", "SEND_CONCURRENCY": "2", "SEND_PREFETCH": "1", "WEBHOOKS_CONCURRENCY": "2",
               "AI_CONCURRENCY": "1", "ANALYTICS_CONCURRENCY": "1"}


def get(port: int, path: str, auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
    """Status and body of a GET to Flower; an HTTP error's status is an answer here, not a failure."""
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


@pytest.mark.e2e
def test_flower_asks_for_basic_auth_and_shows_every_pools_worker(tmp_path: Path) -> None:
    entries = procfile()
    pools = [name for name in entries if name.startswith("worker_")]
    assert {name.removeprefix("worker_") for name in pools} == set(celeryconfig.QUEUES)
    user, password = "operator", secrets.token_urlsafe(18)
    port = free_port()
    env = platform_env(FLOWER_PORT=str(port), FLOWER_BASIC_AUTH=f"{user}:{password}", ESEQ_LOG_LEVEL="INFO",
                       **SMALL_POOLS)
    workers = [Proc(name, sh(entries[name]), env, tmp_path) for name in pools]
    flower = Proc("flower", sh(entries["flower"]), env, tmp_path)
    with running([*workers, flower]):
        for worker in workers:
            worker.wait_ready(120)

        def answering() -> int | None:
            assert flower.popen.poll() is None, flower.tail()
            try:
                return get(port, "/")[0]
            except OSError:  # not listening yet
                return None

        assert wait_for(answering, 60, "Flower to listen", interval=0.2, detail=flower.tail) == 401
        # The API as well as the pages, with no credentials, a wrong password, a wrong user.
        for path in ("/", "/workers", "/api/workers"):
            assert get(port, path)[0] == 401, path
            assert get(port, path, (user, password + "x"))[0] == 401, path
            assert get(port, path, ("admin", password))[0] == 401, path
        status, page = get(port, "/workers", (user, password))
        assert status == 200 and b"Flower" in page

        seen: dict[str, Any] = {}

        def every_pool_listed() -> bool:
            status, body = get(port, "/api/workers?refresh=1", (user, password))
            assert status == 200, body[:500]
            seen.clear()
            seen.update(json.loads(body))
            return {name.split("@", 1)[0] for name in seen} >= set(celeryconfig.QUEUES)

        wait_for(every_pool_listed, 60, "Flower to list a worker of every pool", interval=1,
                 detail=lambda: f"{sorted(seen)}\n{flower.tail()}")
        # One worker a pool, named as its Procfile line names it, consuming only its own queue.
        by_pool = {name.split("@", 1)[0]: info for name, info in seen.items()}
        assert set(by_pool) == set(celeryconfig.QUEUES), sorted(seen)
        for pool, info in by_pool.items():
            assert [queue["name"] for queue in info["active_queues"]] == [pool], (pool, info["active_queues"])
