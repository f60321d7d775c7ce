"""Operations surface: /metrics, /health, security headers, CORS, rate limits and
Sentry reporting, each against the real app (in process, or a real gunicorn when the
behaviour is fixed at process start)."""
from __future__ import annotations

import dataclasses
import gzip
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from models import Message, db, utcnow
from observability.metrics import EXACT_BELOW_ROWS, DatabaseCollector
from tasks.app import app as celery_app
from tests.conftest import METRICS_TOKEN, ROOT, TEST_ENV, Tenant
from tests.support import factories
from tests.support.prometheus import sample
from tests.support.processes import Proc, platform_env, wait_healthy, web_argv
from tests.support.smtp import free_port
from tests.support.waiting import wait_for


# Registered before any worker starts, so the worker knows them.
@celery_app.task(name="ops_test.succeed")
def succeed() -> int:
    return 1


@celery_app.task(name="ops_test.explode")
def explode() -> None:
    raise RuntimeError("boom on purpose")


@celery_app.task(name="ops_test.flaky", bind=True, max_retries=1, default_retry_delay=0)
def flaky(self: Any) -> str:
    if self.request.retries == 0:
        raise self.retry(countdown=0)
    return "second time lucky"


SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def scrape(client: Any) -> str:
    response = client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return response.get_data(as_text=True)


# --- /metrics -----------------------------------------------------------------------------------------------


def test_metrics_count_requests_by_url_rule_method_and_status(client: Any, alice: Tenant) -> None:
    before = sample(scrape(client), "eseq_http_requests_total", method="GET",
                    endpoint="/api/v1/subscribers/<int:subscriber_id>", status="404") or 0.0
    for missing_id in (987654321, 987654322):
        assert client.get(f"/api/v1/subscribers/{missing_id}", headers=alice.headers).status_code == 404
    text = scrape(client)
    assert sample(text, "eseq_http_requests_total", method="GET",
                  endpoint="/api/v1/subscribers/<int:subscriber_id>", status="404") == before + 2
    assert "987654321" not in text, "raw paths must not become labels"


def test_requests_refused_before_reaching_a_view_are_counted_too(client: Any) -> None:
    def refused() -> float:
        return sample(scrape(client), "eseq_http_requests_total", method="GET", endpoint="/api/v1/subscribers",
                      status="422") or 0.0

    before = refused()
    assert client.get("/api/v1/subscribers?email=a%00b").status_code == 422  # refused by a before_request hook
    assert refused() == before + 1


def test_metrics_time_requests_in_a_latency_histogram(client: Any) -> None:
    client.get("/health")
    text = scrape(client)
    count = sample(text, "eseq_http_request_duration_seconds_count", method="GET", endpoint="/health", status="200")
    assert count and count >= 1
    assert sample(text, "eseq_http_request_duration_seconds_bucket", method="GET", endpoint="/health",
                  status="200", le="+Inf") == count


def test_unknown_paths_share_one_series_instead_of_one_per_path(client: Any) -> None:
    client.get(f"/no-such-page-{secrets.token_hex(4)}")
    text = scrape(client)
    assert sample(text, "eseq_http_requests_total", endpoint="<unmatched>", status="404")
    assert "no-such-page" not in text


def add_message(account_id: int, enrollment_id: int, subscriber_id: int, sequence_id: int, status: str) -> None:
    with db.session_scope() as s:
        s.add(Message(account_id=account_id, enrollment_id=enrollment_id, subscriber_id=subscriber_id,
                      sequence_id=sequence_id, idempotency_key=f"metrics-{secrets.token_hex(4)}", status=status,
                      to_email="user0@example.test", subject="hi"))


def analyze(*tables: str) -> None:
    """What autovacuum does as a table changes."""
    with db.get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.execute(text(f"ANALYZE {table}"))


@pytest.mark.committing  # the gauges are read on a connection of their own
def test_metrics_count_live_enrollments_and_messages_exactly_at_every_scrape(client: Any) -> None:
    account_id = factories.account("Alice")
    subscriber_ids = factories.subscribers(account_id, 3)
    sequence_id = factories.sequence(account_id, [{"type": "delay", "seconds": 60}])
    enrollment_ids = factories.enroll(account_id, sequence_id, subscriber_ids, utcnow() + timedelta(hours=1))
    add_message(account_id, enrollment_ids[0], subscriber_ids[0], sequence_id, "queued")
    text_ = scrape(client)
    assert sample(text_, "eseq_metrics_database_up") == 1
    assert sample(text_, "eseq_enrollments", status="active") == 3
    assert sample(text_, "eseq_messages", status="queued") == 1
    add_message(account_id, enrollment_ids[1], subscriber_ids[1], sequence_id, "deferred")
    assert sample(scrape(client), "eseq_messages", status="deferred") == 1


@pytest.fixture
def estimating(app: Any) -> Iterator[None]:
    """The app's database collector treating every table as large (over EXACT_BELOW_ROWS)."""
    collector = next(c for c in app.extensions["eseq_metrics_collectors"] if isinstance(c, DatabaseCollector))
    collector.exact_below = 0
    try:
        yield
    finally:
        collector.exact_below = EXACT_BELOW_ROWS


@pytest.mark.committing  # the gauges are read on a connection of their own
def test_a_large_tables_settled_messages_are_counted_from_its_statistics_not_by_a_scan(client: Any,
                                                                                      estimating: None) -> None:
    account_id = factories.account("Alice")
    subscriber_ids = factories.subscribers(account_id, 8)
    sequence_id = factories.sequence(account_id, [{"type": "delay", "seconds": 60}])
    enrollment_ids = factories.enroll(account_id, sequence_id, subscriber_ids, utcnow() + timedelta(hours=1))
    for i, status in enumerate(("failed", "failed", "sent", "sent", "sent", "queued", "queued")):
        add_message(account_id, enrollment_ids[i], subscriber_ids[i], sequence_id, status)
    analyze("messages")
    text_ = scrape(client)
    assert sample(text_, "eseq_messages", status="failed") == 2
    assert sample(text_, "eseq_messages", status="sent") == 3
    assert sample(text_, "eseq_messages", status="suppressed") == 0
    assert 0 <= (sample(text_, "eseq_metrics_statistics_age_seconds", table="messages") or -1) < 600
    # Another failure shows once statistics are refreshed, not by counting the table per
    # scrape; a queued message (live, in the partial index) shows at once.
    add_message(account_id, enrollment_ids[7], subscriber_ids[7], sequence_id, "failed")
    add_message(account_id, enrollment_ids[7], subscriber_ids[7], sequence_id, "queued")
    text_ = scrape(client)
    assert sample(text_, "eseq_messages", status="failed") == 2
    assert sample(text_, "eseq_messages", status="queued") == 3
    analyze("messages")
    assert sample(scrape(client), "eseq_messages", status="failed") == 3


def test_metrics_without_the_token_are_refused_before_anything_is_read(client: Any) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token-of-enough-length-0123456789"},
                    {"Authorization": f"Basic {METRICS_TOKEN}"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert "ESEQ_METRICS_TOKEN" in response.get_json()["message"]
        assert b"eseq_" not in response.data


def with_settings(app: Any, **changes: Any) -> Any:
    """The app's settings with ``changes``; give the result back with ``app.config.update``."""
    original = app.config["ESEQ_SETTINGS"]
    app.config["ESEQ_SETTINGS"] = dataclasses.replace(original, **changes)
    return original


def test_metrics_are_off_without_a_token_unless_the_platform_runs_embedded(app: Any, client: Any) -> None:
    original = with_settings(app, metrics_token=None)
    try:
        response = client.get("/metrics", headers=SCRAPER)
        assert response.status_code == 404 and "ESEQ_METRICS_TOKEN" in response.get_json()["message"]
    finally:
        app.config["ESEQ_SETTINGS"] = original
    original = with_settings(app, metrics_token=None, redis_url=None, broker_url="sqla+sqlite:///unused.sqlite")
    try:
        assert app.config["ESEQ_SETTINGS"].embedded
        assert client.get("/metrics").status_code == 200  # make run: one machine, nothing to protect it from
    finally:
        app.config["ESEQ_SETTINGS"] = original


def test_metrics_count_celery_task_outcomes_recorded_by_the_worker(worker: Any, client: Any) -> None:
    def counts() -> tuple[float, float, float]:
        text = scrape(client)
        return (sample(text, "eseq_celery_tasks_total", task="ops_test.succeed", state="succeeded") or 0.0,
                sample(text, "eseq_celery_tasks_total", task="ops_test.explode", state="failed") or 0.0,
                sample(text, "eseq_celery_tasks_total", task="ops_test.flaky", state="retried") or 0.0)

    before = counts()
    succeed.delay()
    succeed.delay()
    explode.delay()
    flaky.delay()
    expected = (before[0] + 2, before[1] + 1, before[2] + 1)
    wait_for(lambda: counts() == expected, 30, f"task counts {expected}", interval=0.1,
             detail=lambda: f"saw {counts()}")


# --- /health ------------------------------------------------------------------------------------------------


def test_health_is_ok_when_database_broker_and_redis_answer(client: Any) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok", "redis": "ok"}}


def timed_health(app: Any, client: Any, **settings: str) -> tuple[Any, float]:
    """GET /health with ``settings`` changed for this one request, and how long it took."""
    original = app.config["ESEQ_SETTINGS"]
    app.config["ESEQ_SETTINGS"] = dataclasses.replace(original, **settings)
    try:
        started = time.monotonic()
        response = client.get("/health")
        return response, time.monotonic() - started
    finally:
        app.config["ESEQ_SETTINGS"] = original


def test_health_answers_503_within_three_seconds_when_the_broker_port_is_closed(app: Any, client: Any) -> None:
    closed_port = free_port()  # bound then released: nothing listens there
    response, elapsed = timed_health(app, client, broker_url=f"redis://127.0.0.1:{closed_port}/0")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "ok", "broker": "fail", "redis": "ok"}
    assert elapsed < 3, f"health took {elapsed:.1f}s"


def test_health_answers_503_within_three_seconds_when_broker_and_redis_never_reply(app: Any, client: Any) -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        response, elapsed = timed_health(app, client, broker_url=url, redis_url=url)
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "ok", "broker": "fail", "redis": "fail"}
    assert elapsed < 3, f"health took {elapsed:.1f}s"


# --- headers --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health", "/api/v1/subscribers", "/metrics", "/openapi.json"])
def test_every_response_carries_the_security_headers(client: Any, path: str) -> None:
    headers = client.get(path).headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_the_docs_page_may_load_swagger_ui_but_nothing_may_frame_it(client: Any) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "https://cdn.jsdelivr.net" in csp and "frame-ancestors 'none'" in csp


def test_https_requests_get_strict_transport_security(client: Any) -> None:
    assert "Strict-Transport-Security" not in client.get("/health").headers
    assert client.get("/health", base_url="https://localhost").headers["Strict-Transport-Security"].startswith(
        "max-age=")


# --- settings fixed at process start: a real gunicorn per configuration ------------------------------------------


def http(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def serve(tmp: Path, name: str, **extra: str) -> Iterator[int]:
    """Run gunicorn with this run's environment plus ``extra``; its own Redis prefix
    keeps its rate-limit counters apart from every other server and run."""
    port = free_port()
    env = platform_env(PORT=str(port), ESEQ_BROKER_PREFIX=f"{TEST_ENV['ESEQ_BROKER_PREFIX']}{name}-{secrets.token_hex(3)}:",
                       **extra)
    proc = Proc(name, web_argv(port), env, tmp)
    try:
        wait_healthy(port)
        yield port
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def cors_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    yield from serve(tmp_path_factory.mktemp("cors"), "cors", ESEQ_CORS_ORIGINS="https://app.example.com, https://admin.example.com")


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    yield from serve(tmp_path_factory.mktemp("limited"), "limited", ESEQ_RATE_LIMIT="5 per minute")


def test_cors_allows_a_configured_origin_to_call_the_api(cors_server: int) -> None:
    status, headers, _ = http(cors_server, "OPTIONS", "/api/v1/subscribers", {
        "Origin": "https://admin.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-API-Key, Content-Type"})
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "https://admin.example.com"
    assert "x-api-key" in headers["Access-Control-Allow-Headers"].lower()
    _, headers, _ = http(cors_server, "GET", "/api/v1/subscribers", {"Origin": "https://app.example.com"})
    assert headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "X-Pagination" in headers["Access-Control-Expose-Headers"]


def test_cors_gives_other_origins_no_access(cors_server: int) -> None:
    _, headers, _ = http(cors_server, "GET", "/api/v1/subscribers", {"Origin": "https://evil.example.net"})
    assert "Access-Control-Allow-Origin" not in headers


def test_cors_is_off_when_no_origin_is_configured(client: Any) -> None:
    response = client.get("/api/v1/subscribers", headers={"Origin": "https://app.example.com"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_the_rate_limit_answers_429_in_the_api_error_shape(limited_server: int) -> None:
    statuses = [http(limited_server, "GET", "/api/v1/subscribers")[0] for _ in range(5)]
    assert statuses == [401] * 5  # counted even though unauthenticated
    status, headers, body = http(limited_server, "GET", "/api/v1/subscribers")
    assert status == 429
    payload = json.loads(body)
    assert payload["code"] == 429 and payload["status"] == "Too Many Requests" and payload["message"]
    assert int(headers["Retry-After"]) > 0


def test_health_and_authorized_scrapes_are_never_rate_limited(limited_server: int) -> None:
    assert all(http(limited_server, "GET", "/health")[0] == 200 for _ in range(8))
    assert all(http(limited_server, "GET", "/metrics", SCRAPER)[0] == 200 for _ in range(8))


def test_unauthorized_scrapes_are_rate_limited_like_any_request(limited_server: int) -> None:
    spoofer = {"X-Forwarded-For": "203.0.113.9"}
    statuses = [http(limited_server, "GET", "/metrics", spoofer)[0] for _ in range(6)]
    assert statuses == [401] * 5 + [429]  # /metrics has its own budget (limits are per route)


@pytest.fixture(scope="module")
def proxied_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    yield from serve(tmp_path_factory.mktemp("proxied"), "proxied", ESEQ_RATE_LIMIT="5 per minute",
                     ESEQ_PROXY_HOPS="1")


def test_without_proxy_hops_a_forged_forwarded_for_does_not_escape_the_rate_limit(limited_server: int) -> None:
    statuses = [http(limited_server, "GET", "/api/v1/account", {"X-Forwarded-For": f"198.51.100.{i}"})[0]
                for i in range(10)]
    assert statuses == [401] * 5 + [429] * 5  # all counted against the TCP peer, whatever they claim


def test_behind_one_proxy_the_rate_limit_keys_on_the_forwarded_client(proxied_server: int) -> None:
    client_a = {"X-Forwarded-For": "203.0.113.7"}
    assert [http(proxied_server, "GET", "/api/v1/account", client_a)[0] for _ in range(6)] == [401] * 5 + [429]
    # Another client behind the same proxy has its own budget; a forged entry before
    # the proxy's own is not believed (only the last hop is).
    assert http(proxied_server, "GET", "/api/v1/account", {"X-Forwarded-For": "203.0.113.8"})[0] == 401
    forged = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
    assert http(proxied_server, "GET", "/api/v1/account", forged)[0] == 429


# --- Sentry -------------------------------------------------------------------------------------------------------


class _SentryInbox(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        elif self.headers.get("Content-Encoding") == "br":  # sentry-sdk's choice whenever brotli is installed
            import brotli  # present, or the SDK would not have used it

            body = brotli.decompress(body)
        type(self).received.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: Any) -> None:
        pass


_SENTRY_SCRIPT = """
import sentry_sdk
from web.app import create_app

app = create_app()

@app.get("/boom")
def boom():
    raise ZeroDivisionError("unhandled in a view")

response = app.test_client().get("/boom", headers={"X-API-Key": "eseq_secret_api_key_123"})
assert response.status_code == 500, response.status_code
sentry_sdk.flush(timeout=10)
"""


def test_an_unhandled_error_in_a_view_reaches_sentry_without_secrets() -> None:
    _SentryInbox.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SentryInbox)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**os.environ, "SENTRY_DSN": f"http://publickey@127.0.0.1:{server.server_port}/42",
               "SMTP_PASSWORD": "smtp-password-do-not-leak"}
        done = subprocess.run([sys.executable, "-c", _SENTRY_SCRIPT], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        server.shutdown()
        server.server_close()
    envelopes = b"\n".join(_SentryInbox.received)
    assert b"ZeroDivisionError" in envelopes and b"unhandled in a view" in envelopes
    assert b"eseq_secret_api_key_123" not in envelopes
    assert b"smtp-password-do-not-leak" not in envelopes
    assert b"smtp-password-do-not-leak" not in done.stderr.encode()


@pytest.mark.committing  # the gauges are read on a connection of their own
def test_todays_outcomes_sum_every_accounts_rollups_of_today_only(client: Any) -> None:
    from models import SequenceRollup

    today = utcnow().date()
    rows = []
    for name, delivered, bounced in (("Alice", 40, 3), ("Bob", 9, 1)):
        account_id = factories.account(name)
        sequence_id = factories.sequence(account_id, [{"type": "delay", "seconds": 60}])
        for day, scale in ((today, 1), (today - timedelta(days=1), 100)):
            for metric, n in (("delivered", delivered), ("bounced", bounced)):
                for variant in ("A", "B"):  # each variant's row counts
                    rows.append(SequenceRollup(account_id=account_id, sequence_id=sequence_id, step_id=1,
                                               variant=variant, day=day, metric=metric, uniques=n * scale,
                                               total=n * scale * 2))
    with db.session_scope() as s:
        s.add_all(rows)
    text_ = scrape(client)
    assert sample(text_, "eseq_outcomes_today", metric="delivered") == 2 * (40 + 9)
    assert sample(text_, "eseq_outcomes_today", metric="bounced") == 2 * (3 + 1)
    assert sample(text_, "eseq_outcomes_today", metric="opened") is None  # no row, no series
