"""``tasks.broker.queue_stats`` on the real Redis broker (this run's key prefix): what
the platform publishes is counted per queue, aged by its publish stamp, and
nothing is taken off the queue by looking. (RabbitMQ's: tests/integration/test_rabbitmq.py.)"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tasks.app import app
from tasks.broker import PUBLISHED_AT, queue_stats
from tests.conftest import REDIS_URL, TEST_ENV

PREFIX = TEST_ENV["ESEQ_BROKER_PREFIX"]


@pytest.fixture
def empty_ml_queue() -> Iterator[str]:
    """The ml queue, which no test worker of this module consumes, emptied before and after."""
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("ml")
        yield "ml"
        conn.default_channel.queue_purge("ml")


def test_an_empty_queue_has_no_age_and_a_published_task_is_counted_and_aged(empty_ml_queue: str):
    assert queue_stats(REDIS_URL, [empty_ml_queue], PREFIX) == {empty_ml_queue: (0, None)}
    app.send_task("ml.queue_stats_probe", args=[1])
    app.send_task("ml.queue_stats_probe", args=[2])
    (count, age), = queue_stats(REDIS_URL, [empty_ml_queue], PREFIX).values()
    assert count == 2
    assert age is not None and age >= 0
    # Looking took nothing: the same two are still waiting.
    assert queue_stats(REDIS_URL, [empty_ml_queue], PREFIX)[empty_ml_queue][0] == 2


def test_another_prefix_sees_none_of_this_runs_tasks(empty_ml_queue: str):
    app.send_task("ml.queue_stats_probe", args=[1])
    assert queue_stats(REDIS_URL, [empty_ml_queue], PREFIX)[empty_ml_queue][0] == 1
    assert queue_stats(REDIS_URL, [empty_ml_queue], "eseq-another-platform:") == {empty_ml_queue: (0, None)}


def test_every_published_message_carries_its_publish_time(empty_ml_queue: str):
    app.send_task("ml.queue_stats_probe", args=[1])
    with app.connection_for_write() as conn:
        message = conn.default_channel.basic_get(empty_ml_queue, no_ack=True)
    assert isinstance(message.headers[PUBLISHED_AT], float)
