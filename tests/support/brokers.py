"""The brokers the crash and recovery tests run on: this run's keys in Redis, or a
RabbitMQ virtual host made for this run (so runs sharing one RabbitMQ never see each
other's queues) and deleted after it. "Flushing" a broker loses everything it holds
for the run, as a broker restart without persistence would."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from urllib.parse import quote

import redis
from kombu import Connection
from kombu.transport.native_delayed_delivery import MAX_LEVEL, level_name

AMQP_HOST = os.environ.get("ESEQ_TEST_AMQP_HOST", "127.0.0.1")
AMQP_PORT = int(os.environ.get("ESEQ_TEST_AMQP_PORT", "5672"))
AMQP_USER = os.environ.get("ESEQ_TEST_AMQP_USER", "guest")
AMQP_PASSWORD = os.environ.get("ESEQ_TEST_AMQP_PASSWORD", "guest")


def rabbitmq_unavailable() -> str | None:
    """Why this run cannot have its own RabbitMQ vhost, or None when it can."""
    try:
        socket.create_connection((AMQP_HOST, AMQP_PORT), timeout=2).close()
    except OSError as exc:
        return f"RabbitMQ does not answer on {AMQP_HOST}:{AMQP_PORT} ({exc}); run scripts/ensure_services.sh"
    if shutil.which("rabbitmqctl") is None:
        return "rabbitmqctl is not installed: a vhost per test run cannot be made"
    return None


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def rabbitmq_vhost(name: str) -> Iterator[str]:
    """A fresh vhost ``name`` the test user may use fully; yields its broker URL."""
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, AMQP_USER, ".*", ".*", ".*")
        yield f"amqp://{AMQP_USER}:{AMQP_PASSWORD}@{AMQP_HOST}:{AMQP_PORT}/{quote(name, safe='')}"
    finally:
        _rabbitmqctl("delete_vhost", name)


def flush(broker_url: str, redis_prefix: str, queues: tuple[str, ...]) -> int:
    """Everything the broker holds for this run is gone; returns how many keys or
    messages went. On RabbitMQ the pools' queues and Celery's delayed-delivery queues
    are purged: like a restart that kept nothing, except that a message a live
    worker has taken and not acked stays with that worker (RabbitMQ purges only
    ready messages); a killed worker's were returned to the queue, and go too."""
    if broker_url.startswith(("redis", "rediss")):
        client = redis.Redis.from_url(broker_url)
        keys = client.keys(redis_prefix + "*")
        return int(client.delete(*keys)) if keys else 0
    purged = 0
    with Connection(broker_url, connect_timeout=5) as conn:
        for name in (*queues, *(level_name(level) for level in range(MAX_LEVEL + 1))):
            channel = conn.channel()  # a missing queue closes its channel: one each
            try:
                purged += channel.queue_purge(name) or 0
            except conn.channel_errors:
                pass  # not declared in this vhost: nothing to lose
            finally:
                try:
                    channel.close()
                except conn.connection_errors + conn.channel_errors:
                    pass
    return purged
