"""Benchmark of the scaling signals' share of a /metrics scrape (issue 22, item 5):
the broker read of every worker pool's queue depth and oldest task's age.

Fills this run's Redis queues (its own key prefix) with copies of a real send task
(published through Celery, a batch of 500 ids, so with its ``published_at``
header), then times the queue collector with the queues empty and with
``--depth`` tasks waiting in ``send``; then, when RabbitMQ answers on
127.0.0.1:5672, the passive-declare read of six queues, one holding ``--depth``
messages. Needs no database.

Run: ``.venv/bin/python -m bench.queue_metrics`` (``--depth N``, ``--scrapes N``).
"""
from __future__ import annotations

import argparse
import socket

from bench import environment, timed

RUN, _, ENV = environment()
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"

import redis  # noqa: E402
from kombu import Connection, Exchange, Producer, Queue  # noqa: E402

import celeryconfig  # noqa: E402
from observability.queues import AmqpQueues, QueueCollector, RedisQueues  # noqa: E402
from tasks.app import app  # noqa: E402


def fill_redis(client: redis.Redis, depth: int) -> None:
    key = ENV["ESEQ_BROKER_PREFIX"] + "send"
    app.send_task("sending.bench_probe", args=[list(range(500))])
    message = client.lindex(key, -1)
    pipe = client.pipeline(transaction=False)
    for i in range(depth - 1):
        pipe.lpush(key, message)
        if i % 10_000 == 0:
            pipe.execute()
    pipe.execute()
    assert client.llen(key) == depth


def bench_redis(depth: int, scrapes: int) -> None:
    client = redis.Redis.from_url(ENV["REDIS_URL"])
    collector = QueueCollector(RedisQueues(ENV["REDIS_URL"], ENV["ESEQ_BROKER_PREFIX"]), celeryconfig.QUEUES)
    try:
        p50, p99 = timed(lambda: list(collector.collect()), scrapes)
        print(f"redis, {len(celeryconfig.QUEUES)} queues empty: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        fill_redis(client, depth)
        p50, p99 = timed(lambda: list(collector.collect()), scrapes)
        print(f"redis, {depth:,} tasks waiting in send: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    finally:
        keys = client.keys(ENV["ESEQ_BROKER_PREFIX"] + "*")
        if keys:
            client.delete(*keys)


def bench_rabbitmq(depth: int, scrapes: int) -> None:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
    except OSError:
        print("rabbitmq: not running on 127.0.0.1:5672, skipped")
        return
    names = [f"eseq-bench-{RUN}-{i}" for i in range(len(celeryconfig.QUEUES))]
    with Connection(AMQP_URL) as connection:
        queues = [Queue(n, Exchange(""), routing_key=n, durable=False) for n in names]
        for queue in queues:
            queue(connection.default_channel).declare()
        try:
            producer = Producer(connection.default_channel)
            for i in range(depth):
                producer.publish({"ids": list(range(500))}, routing_key=names[1])
            reader = AmqpQueues(AMQP_URL)
            collector = QueueCollector(reader, names)
            list(collector.collect())  # the kept connection is opened once, on the first scrape
            p50, p99 = timed(lambda: list(collector.collect()), scrapes)
            print(f"rabbitmq, {len(names)} queues, {depth:,} messages in one: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
            reader.close()
        finally:
            for queue in queues:
                queue(connection.default_channel).delete()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--depth", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    bench_redis(args.depth, args.scrapes)
    bench_rabbitmq(args.depth // 5, args.scrapes)


if __name__ == "__main__":
    main()
