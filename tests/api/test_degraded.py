"""With Redis (rate-limit storage and broker) unreachable, the API keeps answering
what it can: a real gunicorn started with REDIS_URL and the broker on a closed port."""
from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from audience.imports import imports_to_resume
from models import db, utcnow
from settings import load_settings

from tests.conftest import ADMIN_TOKEN, TEST_ENV
from tests.support.processes import BIN, Proc, platform_env
from tests.support.smtp import free_port
from tests.support.waiting import wait_for

# The server is another process, committing on connections of its own: the rows it
# writes cannot be rolled back with the test's transaction, so tables are truncated.
pytestmark = pytest.mark.committing


def call(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
         raw: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            status, answer_headers, payload = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, answer_headers, payload = exc.code, dict(exc.headers), exc.read()
    try:
        return status, answer_headers, json.loads(payload)
    except ValueError:
        return status, answer_headers, payload


def serve_without_redis(tmp: Path, name: str, **extra: str) -> Iterator[int]:
    """One gunicorn worker (so in-memory limits are one process's) whose Redis and
    broker URLs point at a port nothing listens on."""
    port = free_port()
    dead = f"redis://127.0.0.1:{free_port()}/0"
    env = platform_env(PORT=str(port), REDIS_URL=dead, CELERY_BROKER_URL=dead, CELERY_RESULT_BACKEND=dead,
                       ESEQ_BROKER_PREFIX=f"{TEST_ENV['ESEQ_BROKER_PREFIX']}{name}-{secrets.token_hex(3)}:", **extra)
    argv = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4", "web.wsgi:app"]
    proc = Proc(name, argv, env, tmp)
    try:
        def answering() -> bool:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{name} did not start:\n{proc.tail()}")
            try:
                return call(port, "GET", "/health")[0] in (200, 503)
            except OSError:
                return False

        wait_for(answering, 60, f"{name} to answer", interval=0.3, detail=proc.tail)
        yield port
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def no_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    yield from serve_without_redis(tmp_path_factory.mktemp("no-redis"), "no-redis")


@pytest.fixture(scope="module")
def no_redis_limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    yield from serve_without_redis(tmp_path_factory.mktemp("no-redis-limited"), "no-redis-limited",
                                   ESEQ_RATE_LIMIT="5 per minute")


def tenant(port: int) -> dict[str, str]:
    status, _, body = call(port, "POST", "/api/v1/accounts", {"name": "Alice", "from_email": "alice@example.com"},
                           {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert status == 201, body
    return {"X-API-Key": body["api_key"]}


def test_the_api_answers_reads_and_writes_while_redis_is_down(no_redis: int) -> None:
    headers = tenant(no_redis)
    assert call(no_redis, "GET", "/api/v1/account", headers=headers)[0] == 200
    status, _, body = call(no_redis, "POST", "/api/v1/subscribers", {"email": "bob@example.com"}, headers)
    assert status == 201, body
    status, _, body = call(no_redis, "GET", "/api/v1/subscribers", headers=headers)
    assert status == 200 and [s["email"] for s in body] == ["bob@example.com"]
    status, _, body = call(no_redis, "POST", "/api/v1/events", {"email": "bob@example.com", "name": "purchase"},
                           headers)
    assert status == 202, body


def test_health_still_says_the_broker_and_redis_are_down(no_redis: int) -> None:
    status, _, body = call(no_redis, "GET", "/health")
    assert status == 503
    assert body["checks"] == {"database": "ok", "broker": "fail", "redis": "fail"}


def test_the_rate_limit_holds_in_memory_while_redis_is_down(no_redis_limited: int) -> None:
    statuses = [call(no_redis_limited, "GET", "/api/v1/subscribers")[0] for _ in range(6)]
    assert statuses == [401] * 5 + [429]


def test_an_import_sent_while_the_broker_is_down_is_kept_for_the_tick(no_redis: int) -> None:
    headers = tenant(no_redis)
    status, _, body = call(no_redis, "POST", "/api/v1/subscribers/import",
                           headers={**headers, "Content-Type": "text/csv"}, raw=b"email\ncarol@example.com\n")
    assert status == 202, body
    assert body["status"] == "pending"
    status, _, job = call(no_redis, "GET", f"/api/v1/jobs/{body['job_id']}", headers=headers)
    assert status == 200 and job["status"] == "pending"
    # The tick's query for imports whose task was lost finds it once its lease lapses.
    lease = timedelta(seconds=load_settings().lease_seconds)
    with db.session_scope() as session:
        assert imports_to_resume(session, utcnow() + lease + timedelta(seconds=1), lease) == [body["job_id"]]
