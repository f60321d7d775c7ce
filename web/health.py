"""``/health``: is each dependency reachable right now? 503 when one is not, so a
load balancer stops routing to a web process that cannot do its job."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from models import db

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


def _check_database() -> str:
    with db.get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))
    return "ok"


def _check_broker(url: str) -> str:
    """One connection attempt, no retry sleeps: a closed broker port answers "fail"
    in milliseconds and a silent one within the 2 s timeouts, never the 503 after
    kombu's default backoff that a load balancer has long given up on."""
    from kombu import Connection

    redis_like = url.startswith(("redis", "rediss"))
    # kombu's SQLAlchemy transport passes its options to create_engine(): socket options only for Redis.
    options: dict[str, object] = {"socket_timeout": 2, "socket_connect_timeout": 2} if redis_like else {}
    with Connection(url, connect_timeout=2, transport_options={"max_retries": 0, **options}) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        if url.startswith("sqla+"):
            # That transport connects lazily; reading a queue's size really opens the file.
            conn.default_channel._size("default")
    return "ok"


def _check_redis(url: str) -> str:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def run_checks() -> dict[str, str]:
    settings = current_app.config["ESEQ_SETTINGS"]
    checks: dict[str, Any] = {"database": _check_database, "broker": lambda: _check_broker(settings.broker_url)}
    if settings.redis_url:
        checks["redis"] = lambda: _check_redis(settings.redis_url)

    def _reading(name: str) -> str:
        try:
            return str(checks[name]())
        except Exception as exc:  # a failed check is a reading, not an error
            log.warning("health check failed", extra={"check": name, "error": type(exc).__name__})
            return "fail"

    # In parallel: when one host is unreachable (broker and Redis are often the same
    # one), /health still answers within one timeout, not the sum of them.
    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        return dict(zip(checks, pool.map(_reading, checks)))


@bp.get("/health")
def health():  # type: ignore[no-untyped-def]
    checks = run_checks()
    ok = all(v == "ok" for v in checks.values())
    body: dict[str, Any] = {"status": "ok" if ok else "fail", "checks": checks}
    if current_app.config["ESEQ_SETTINGS"].dev_smtp_port:  # say so wherever mail is not really sent
        body["delivery"] = "development catcher"
    return jsonify(body), 200 if ok else 503
