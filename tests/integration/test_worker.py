"""The test worker consumes from the real Redis broker under this run's key prefix."""
from __future__ import annotations

import redis

from tasks.app import app
from tests.conftest import REDIS_URL, TEST_ENV


@app.task(name="sequencing.test_echo", ignore_result=False)
def echo(value: int) -> int:
    return value * 2


def test_it_isolates_this_runs_queues_under_a_prefix(worker):
    result = echo.delay(21)
    assert result.get(timeout=20) == 42
    # The task's own result key, not any key at all: the task counter writes one
    # under the prefix whatever the broker does.
    r = redis.Redis.from_url(REDIS_URL)
    assert r.exists(TEST_ENV["ESEQ_BROKER_PREFIX"] + f"celery-task-meta-{result.id}"), \
        "broker keys should carry the run's prefix"
    assert not r.exists(f"celery-task-meta-{result.id}")
