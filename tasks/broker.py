"""The Redis broker transport, with one Redis client per channel instead of one per command.

kombu 5.7 builds a new ``redis.Redis`` for every synchronous command it sends
(``Channel.conn_or_acquire``): each task published, each message a worker takes
(its unacked bookkeeping), each ack and each batch of task events. redis-py 8
fills a table of about 170 response callbacks in every client it builds, about
0.35 ms of CPU here, more than the command itself; a send batch paid it four or
five times, under the send worker's GIL. A client is only a handle on the
channel's connection pool, and redis-py documents it as safe to share between
threads, so keeping one per channel (and per pool: kombu drops its pools when a
connection closes) does the same work.

``redis://`` and ``rediss://`` URLs resolve to this transport once
``use_reused_clients`` has run (tasks.app, before the app connects).

Also here: ``queue_stats``, what a queue holds read from any broker the platform
runs on (Redis, RabbitMQ, the embedded one), for health and metrics.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import redis
from kombu import Connection
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _reused_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the consumer's own connection (BRPOP, pub/sub): built once already
            return super()._create_client(asynchronous=True)
        client = self._reused_client
        if client is None or client.connection_pool is not self.pool:
            client = self._reused_client = super()._create_client(asynchronous=False)
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel


def use_reused_clients() -> None:
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"


# The header each task message carries from its publisher: when it was published
# (seconds since the epoch), so a queue's oldest waiting task has an age to report.
PUBLISHED_AT = "eseq_published_at"


def stamp_published_at(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """``before_task_publish`` receiver (tasks.app): a message's headers get PUBLISHED_AT."""
    if headers is not None:
        headers.setdefault(PUBLISHED_AT, time.time())


def queue_stats(broker_url: str, queues: Iterable[str], prefix: str = "") -> dict[str, tuple[int, float | None]]:
    """Per queue, the tasks waiting in it and the age in seconds of the oldest (None when
    empty, or when the broker cannot say without taking the message).

    Redis: the queue's lists' lengths, and the age read from the PUBLISHED_AT header of
    the message next to be taken (LINDEX, nothing is moved); ``prefix`` is the
    deployment's key prefix (ESEQ_BROKER_PREFIX). RabbitMQ: the ready count of a passive
    declare (messages a worker holds unacked are not waiting); the age is None, since
    AMQP offers no look at a message that leaves it in place. Other transports (the
    embedded SQLite broker): the count, no age. A queue not declared yet counts 0.
    """
    names = list(queues)
    redis_like = broker_url.startswith(("redis", "rediss"))
    options: dict[str, object] = {"max_retries": 0}
    if redis_like:
        options.update(global_keyprefix=prefix, socket_timeout=2, socket_connect_timeout=2)
    stats: dict[str, tuple[int, float | None]] = {}
    with Connection(broker_url, connect_timeout=2, transport_options=options) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        if broker_url.startswith(("amqp", "pyamqp")):
            for name in names:
                stats[name] = (_amqp_ready(conn, name), None)
            return stats
        channel = conn.default_channel
        now = time.time()
        for name in names:
            oldest = _redis_oldest(channel, name) if redis_like else None
            stats[name] = (int(channel._size(name)), None if oldest is None else max(now - oldest, 0.0))
    return stats


def _amqp_ready(conn: Connection, name: str) -> int:
    channel = conn.channel()  # a passive declare of a missing queue closes its channel
    try:
        return int(channel.queue_declare(queue=name, passive=True).message_count)
    except conn.channel_errors:
        return 0
    finally:
        try:
            channel.close()
        except conn.connection_errors + conn.channel_errors:
            pass


def _redis_oldest(channel: Any, name: str) -> float | None:
    """The PUBLISHED_AT of the oldest message next in line, over the queue's priority lists."""
    # kombu's prefixing client leaves LINDEX alone: a plain client on its pool, prefixed here.
    client = redis.Redis(connection_pool=channel.client.connection_pool)
    stamps: list[float] = []
    for pri in channel.priority_steps:
        raw = client.lindex(channel.global_keyprefix + channel._q_for_pri(name, pri), -1)
        if raw is None:
            continue
        try:
            stamp = json.loads(raw)["headers"].get(PUBLISHED_AT)
        except (ValueError, KeyError, AttributeError, TypeError):
            continue  # not a Celery message of ours (or from before the header): no age
        if isinstance(stamp, (int, float)):
            stamps.append(float(stamp))
    return min(stamps) if stamps else None


def declare_every_queue(connection: Connection, queues: Iterable[Any]) -> None:
    """Declare every pool's queue (its exchange, the queue, their binding), not only
    the ones this worker consumes. On RabbitMQ a worker binds every queue of the app
    to the native delayed-delivery exchange when it starts (how a countdown task comes
    back to its pool); binding a queue whose exchange no worker has declared yet fails,
    and that worker's countdown tasks would then go nowhere. Waits for the broker as
    the worker itself would (broker_connection_retry_on_startup)."""
    with connection.clone() as conn:
        conn.ensure_connection(max_retries=30, interval_start=1, interval_step=1, interval_max=2)
        channel = conn.default_channel
        for queue in queues:
            queue.bind(channel).declare()
