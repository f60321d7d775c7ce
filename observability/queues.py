"""Scaling signals: each worker pool's queue depth and the age of its oldest waiting
task, read from the broker at scrape time, for an autoscaler (KEDA, an HPA on
custom metrics) to scale each pool on its own queue (docs/operations.md).

Why this design:

* **The publish time travels with the task.** Neither Celery nor kombu stamps a
  message with the moment it was published, so every process that publishes
  (web, beat, workers) adds a ``published_at`` header (Unix seconds) through
  Celery's ``before_task_publish`` signal. The header is the message's own, so it
  is right on every broker and survives a worker's restart; a retried task is a
  new publish and waits anew.
* **Redis**: kombu keeps a queue as a list, pushed on the left and popped on the
  right, so the oldest waiting task is ``LINDEX queue -1``. One pipelined round
  trip reads ``LLEN`` and that one element for every queue, whatever their length.
  Tasks a worker has reserved (kombu's ``unacked`` hash) are not waiting and are
  not counted. The platform publishes no task priorities, so the priority lists
  kombu would add for them are not read.
* **RabbitMQ**: a passive ``queue_declare`` answers the number of ready messages
  (again without the unacknowledged ones) and changes nothing. The age is not
  exported there: AMQP has no way to look at a queue's head without taking the
  message (``basic_get`` then a requeue would reorder the queue and count as a
  redelivery), and the management API, whose ``head_message_timestamp`` would
  give it, is a plugin this platform does not require. Scale on the depth.
* **The embedded broker** (kombu's SQLAlchemy transport, ``make run``) has one
  worker on one machine and nothing to scale: no queue gauges.
* ``eseq_queue_metrics_up`` says whether the read worked, so a dashboard tells an
  empty queue from an unreachable broker.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

PUBLISHED_AT = "published_at"
# A scrape must never hang on the broker: short socket timeouts, and one failure
# makes the next scrape reconnect.
TIMEOUT_SECONDS = 1.0


def stamp_published_at(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """``before_task_publish`` receiver: the publish time in the message's headers
    (Celery's protocol 2 hands the headers dict it then publishes)."""
    if headers is not None:
        headers.setdefault(PUBLISHED_AT, time.time())


def connect_publish_stamp() -> None:
    """Stamp every task this process publishes; safe to call more than once."""
    from celery.signals import before_task_publish

    before_task_publish.connect(stamp_published_at, weak=False, dispatch_uid="eseq-published-at")


def age_of(raw_message: bytes | None, now: float) -> float | None:
    """Seconds a kombu Redis message has waited, from its ``published_at`` header;
    None for a message without one (published by an older release)."""
    if raw_message is None:
        return 0.0
    try:
        published = json.loads(raw_message)["headers"][PUBLISHED_AT]
        return max(0.0, now - float(published))  # another host's clock may run a little ahead
    except (ValueError, KeyError, TypeError):
        return None


class RedisQueues:
    """Depth and oldest age of kombu's Redis lists (under the broker's key prefix)."""

    def __init__(self, url: str, prefix: str = "") -> None:
        import redis

        self.prefix = prefix
        self.client = redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_SECONDS,
                                           socket_timeout=TIMEOUT_SECONDS)

    def read(self, queues: Iterable[str]) -> dict[str, tuple[int, float | None]]:
        names = list(queues)
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.llen(self.prefix + name)
            pipe.lindex(self.prefix + name, -1)
        replies = pipe.execute()
        now = time.time()
        return {name: (int(replies[2 * i]), age_of(replies[2 * i + 1], now)) for i, name in enumerate(names)}


class AmqpQueues:
    """Ready messages of RabbitMQ queues by passive declare, over one kept connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: Any = None
        self._channel: Any = None
        self._lock = threading.Lock()  # gunicorn threads share the collector

    def _open_channel(self) -> Any:
        if self._connection is None:
            from kombu import Connection

            self._connection = Connection(self.url, connect_timeout=TIMEOUT_SECONDS, transport_options={
                "read_timeout": TIMEOUT_SECONDS, "write_timeout": TIMEOUT_SECONDS})
            self._connection.connect()
        if self._channel is None:
            self._channel = self._connection.channel()
        return self._channel

    def _depth(self, name: str) -> int:
        from amqp.exceptions import NotFound

        try:
            return int(self._open_channel().queue_declare(queue=name, passive=True).message_count)
        except NotFound:  # no worker has declared it yet: nothing waits there; the broker closed the channel
            self._channel = None
            return 0

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # closing a broken connection may fail too; it is dropped either way
                pass
        self._connection = self._channel = None

    def read(self, queues: Iterable[str]) -> dict[str, tuple[int, float | None]]:
        names = list(queues)
        with self._lock:
            try:
                return {name: (self._depth(name), None) for name in names}
            except Exception:  # a kept connection the broker dropped since: once more on a new one
                self.close()
            try:
                return {name: (self._depth(name), None) for name in names}
            except Exception:
                self.close()
                raise


def queue_reader(broker_url: str, prefix: str = "") -> RedisQueues | AmqpQueues | None:
    """The reader for ``broker_url``'s kind of broker; None for the embedded one."""
    scheme = broker_url.split("://", 1)[0].split("+")[0]
    if scheme in ("redis", "rediss"):
        return RedisQueues(broker_url, prefix)
    if scheme in ("amqp", "amqps", "pyamqp"):
        return AmqpQueues(broker_url)
    return None


class QueueCollector(Collector):
    """``eseq_queue_depth`` and ``eseq_queue_oldest_task_age_seconds`` by queue."""

    def __init__(self, reader: RedisQueues | AmqpQueues, queues: Iterable[str]) -> None:
        self.reader = reader
        self.queues = tuple(queues)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("eseq_queue_metrics_up", "1 when the scrape-time read of the broker's queues worked.")
        try:
            found = self.reader.read(self.queues)
        except Exception as exc:
            log.warning("queue gauges unreadable", extra={"error": type(exc).__name__})
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily("eseq_queue_depth", "Tasks waiting in each worker pool's queue (not yet reserved "
                                  "by a worker).", labels=["queue"])
        age = GaugeMetricFamily("eseq_queue_oldest_task_age_seconds", "Seconds the oldest waiting task of each "
                                "queue has waited, 0 when none waits (Redis only: see docs/operations.md).",
                                labels=["queue"])
        for name, (count, seconds) in found.items():
            depth.add_metric([name], count)
            if seconds is not None:
                age.add_metric([name], seconds)
        yield depth
        yield age
