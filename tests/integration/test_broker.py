"""Publishing batches of ids through the real Redis broker: what a task says about
its arguments, and the Redis clients the transport builds to carry them."""
from __future__ import annotations

import traceback
from typing import Any

import redis
from celery.signals import before_task_publish
from kombu import Connection

from tasks.app import app
from tasks.batching import enqueue_ids, fan_out, ids_repr
from tasks.broker import Channel
from tests.conftest import REDIS_URL


@app.task(name="sequencing.test_count_ids", ignore_result=False)
def count_ids(ids: list[int]) -> int:
    return sum(ids)


def test_ids_repr_names_the_count_and_the_ends():
    assert ids_repr([7]) == "([1 ids: 7],)"
    assert ids_repr([7, 8, 12]) == "([3 ids: 7, 8, 12],)"
    assert ids_repr(list(range(100, 150))) == "([50 ids: 100 … 149],)"


def test_fan_out_sends_every_id_once_with_a_short_description(worker):
    published: list[dict[str, Any]] = []

    def seen(headers: dict[str, Any] | None = None, **_: Any) -> None:
        if headers and headers.get("task") == count_ids.name:
            published.append(headers)

    before_task_publish.connect(seen, weak=False)
    try:
        ids = list(range(1, 121))
        fan_out(count_ids, ids, 50)
    finally:
        before_task_publish.disconnect(seen)
    assert [h["argsrepr"] for h in published] == [
        "([50 ids: 1 … 50],)", "([50 ids: 51 … 100],)", "([20 ids: 101 … 120],)"]
    # The worker got the ids themselves, not the description.
    results = [app.AsyncResult(h["id"]).get(timeout=20) for h in published]
    assert results == [sum(range(1, 51)), sum(range(51, 101)), sum(range(101, 121))]


def test_publishing_reuses_one_redis_client(monkeypatch):
    # No worker here: its consumer's channels would build their own client, once
    # each, at moments of their own.
    enqueue_ids(count_ids, [1])  # the producer pool's connection and channel exist from here on
    built: list[Any] = []
    original = redis.Redis.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        # The broker's clients only: the result backend (the worker storing
        # results) builds its own.
        if any("kombu/transport" in frame.filename for frame in traceback.extract_stack(limit=8)):
            built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", counting)
    for i in range(20):
        enqueue_ids(count_ids, [i, i + 1])
    app.control.purge()  # nothing is to run them
    # kombu's own channel built two a task (the task, its task-sent event): 40 here.
    assert built == []


def test_a_channel_builds_a_new_client_when_its_pool_is_replaced():
    with Connection(REDIS_URL) as connection:
        channel = connection.channel()
        assert isinstance(channel, Channel)
        first = channel._create_client()
        assert channel._create_client() is first
        assert first.ping()
        channel._pool = None  # what kombu does when the connection closes
        second = channel._create_client()
        assert second is not first and second.connection_pool is channel.pool
        assert second.ping()
