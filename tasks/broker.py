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

Also here: ``declare_every_queue``, which RabbitMQ's delayed delivery needs of
every worker. What a queue holds is read for /metrics by observability.queues.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kombu import Connection
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis

from settings import is_rabbitmq


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


# A key the tick keeps in a Redis broker: when it is gone, so is whatever the broker
# held when it went (a FLUSHALL, a restart without persistence).
_EPOCH_KEY = "eseq:broker-epoch"
_clients: dict[str, Any] = {}


def keeps_a_dead_workers_tasks(broker_url: str) -> bool:
    """Whether tasks a killed worker had taken (prefetched, not started) stay unacked
    in the broker until its visibility timeout (celeryconfig.VISIBILITY_TIMEOUT, an
    hour): Redis and the embedded broker. RabbitMQ hands them out again as soon as
    the dead worker's connection closes."""
    return not is_rabbitmq(broker_url)


def broker_was_emptied(broker_url: str, prefix: str) -> bool:
    """Whether a Redis broker lost its contents since the last call (in any process):
    the marker key is set if absent, and its absence is the answer. Always False for
    other brokers (RabbitMQ keeps its queues on disk). The first call on a new broker
    answers True too, which only hands out again what is due."""
    if not broker_url.startswith(("redis://", "rediss://")):
        return False
    import redis

    client = _clients.get(broker_url)
    if client is None:
        client = _clients[broker_url] = redis.Redis.from_url(broker_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return bool(client.set(prefix + _EPOCH_KEY, "1", nx=True))
    except redis.RedisError:  # down: nothing can be enqueued now anyway; the next tick asks again
        return False
