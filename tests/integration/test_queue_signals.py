"""Scaling signals from the real brokers: tasks published with no worker running
show in /metrics as each queue's depth and, on Redis, the age of the oldest one."""
from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kombu import Connection, Exchange, Producer, Queue

import celeryconfig
from observability.queues import PUBLISHED_AT, AmqpQueues, QueueCollector, RedisQueues, queue_reader
from tests.conftest import METRICS_TOKEN, REDIS_URL, TEST_ENV
from tests.support.prometheus import sample
from tests.support.waiting import wait_for

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
PROBE = "ml.eseq_queue_signal_probe"  # routed to the ml queue; no worker runs it here


def scrape(client: Any) -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.fixture
def empty_ml_queue() -> Iterator[str]:
    """This run's ml list (under its broker prefix), empty before and after."""
    key = TEST_ENV["ESEQ_BROKER_PREFIX"] + "ml"
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(key)
    yield key
    client.delete(key)


def test_waiting_tasks_show_as_depth_and_oldest_age_per_queue(client: Any, celery_app: Any, empty_ml_queue: str):
    before = scrape(client)
    assert sample(before, "eseq_queue_metrics_up") == 1
    assert sample(before, "eseq_queue_depth", queue="ml") == 0
    assert sample(before, "eseq_queue_oldest_task_age_seconds", queue="ml") == 0
    for _ in range(3):
        celery_app.send_task(PROBE)
    time.sleep(1.0)
    celery_app.send_task(PROBE)  # newer tasks do not make the oldest one younger
    text = scrape(client)
    assert sample(text, "eseq_queue_depth", queue="ml") == 4
    assert sample(text, "eseq_queue_oldest_task_age_seconds", queue="ml") >= 1.0
    # Every queue a Procfile worker consumes has its series, waiting tasks or not.
    for queue in celeryconfig.QUEUES:
        assert sample(text, "eseq_queue_depth", queue=queue) is not None, queue


def test_an_unreachable_broker_says_so_instead_of_reporting_empty_queues():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    families = list(QueueCollector(RedisQueues(f"redis://127.0.0.1:{port}/0"), ["send"]).collect())
    assert [(f.name, [s.value for s in f.samples]) for f in families] == [("eseq_queue_metrics_up", [0])]


def rabbitmq_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not rabbitmq_up(), reason="RabbitMQ is not running on 127.0.0.1:5672")
def test_rabbitmq_queue_depth_comes_from_a_passive_declare():
    name = f"eseq-test-signals-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, Exchange(""), routing_key=name, durable=False)
    with Connection(AMQP_URL) as connection:
        queue(connection.default_channel).declare()
        try:
            producer = Producer(connection.default_channel)
            for i in range(5):
                producer.publish({"n": i}, routing_key=name, headers={"published_at": time.time()})
            reader = AmqpQueues(AMQP_URL)
            try:
                # A queue not declared yet is empty, and the reader goes on with the next one.
                found = reader.read([f"{name}-missing", name])
                assert found == {f"{name}-missing": (0, None), name: (5, None)}
                # Only read: the messages are all still there.
                assert reader.read([name]) == {name: (5, None)}
            finally:
                reader.close()
        finally:
            queue(connection.default_channel).delete()


@pytest.mark.skipif(not rabbitmq_up(), reason="RabbitMQ is not running on 127.0.0.1:5672")
def test_a_rabbitmq_connection_lost_between_scrapes_is_replaced_at_the_next_one():
    reader = AmqpQueues(AMQP_URL)
    try:
        assert reader.read(["eseq-test-signals-absent"]) == {"eseq-test-signals-absent": (0, None)}
        lost = reader._connection
        lost.connection.sock.close()  # as a broker restart would leave it
        assert reader.read(["eseq-test-signals-absent"]) == {"eseq-test-signals-absent": (0, None)}
        assert reader._connection is not lost
    finally:
        reader.close()


@pytest.mark.skipif(not rabbitmq_up(), reason="RabbitMQ is not running on 127.0.0.1:5672")
def test_celery_tasks_published_to_rabbitmq_are_counted_and_carry_their_publish_time():
    from celery import Celery

    name = f"eseq-test-signals-{uuid.uuid4().hex[:8]}"  # the shared broker's send queue is not ours to count
    sender = Celery("eseq-signals-test")
    # The run's CELERY_BROKER_URL (Redis) wins over broker_url; the write URL is ours.
    sender.conf.update(broker_write_url=AMQP_URL, task_queues=[Queue(name, durable=False)],
                       task_create_missing_queues=False)
    reader = queue_reader(AMQP_URL)
    assert isinstance(reader, AmqpQueues)
    try:
        for _ in range(3):
            sender.send_task(PROBE, queue=name)

        def scraped() -> dict[str, dict[str | None, float]]:
            return {f.name: {s.labels.get("queue"): s.value for s in f.samples}
                    for f in QueueCollector(reader, [name]).collect()}

        # Publishing without confirms returns before the broker has queued the message.
        text_ = wait_for(lambda: (got := scraped())["eseq_queue_depth"] == {name: 3} and got, 10,
                         "three waiting tasks in RabbitMQ", detail=lambda: str(scraped()))
        assert text_["eseq_queue_oldest_task_age_seconds"] == {}  # not exported on RabbitMQ
        with Connection(AMQP_URL) as connection:
            message = connection.default_channel.basic_get(name, no_ack=True)
            assert message.headers[PUBLISHED_AT] <= time.time()  # the stamp travels on AMQP too
    finally:
        reader.close()
        with Connection(AMQP_URL) as connection:
            Queue(name, durable=False)(connection.default_channel).delete()
        sender.close()


def test_the_embedded_broker_has_no_queue_signals():
    assert queue_reader("sqla+sqlite:///var/broker.sqlite") is None
