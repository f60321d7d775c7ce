"""The test worker consumes from the real Redis broker under this run's key prefix."""
from __future__ import annotations

import redis

from tasks.app import app
from tests.conftest import REDIS_URL, TEST_ENV


@app.task(name="sequencing.test_echo", ignore_result=False)
def echo(value: int) -> int:
    return value * 2


def test_it_isolates_this_runs_queues_under_a_prefix(worker):
    assert echo.delay(21).get(timeout=20) == 42
    keys = redis.Redis.from_url(REDIS_URL).keys(TEST_ENV["ESEQ_BROKER_PREFIX"] + "*")
    assert keys, "broker keys should carry the run's prefix"
