"""A countdown task on RabbitMQ's quorum queues (the ai pool's retry after a model
server's Retry-After): Celery sends it through RabbitMQ's native delayed delivery,
which a worker sets up at start, and it must come back to its pool's queue, which
only a topic exchange allows (celeryconfig.py). Run on RabbitMQ only."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from observability.queues import queue_reader
from tests.conftest import ROOT
from tests.support.brokers import flush
from tests.support.processes import Proc, platform_env, running, worker_argv
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

PUBLISH_DELAYED = 'from tasks.app import app; app.send_task("ai.delay_probe", args=[1], countdown=15)'


def test_a_countdown_task_comes_back_to_its_pools_queue(tmp_path: Path, rabbitmq_url: str):
    env = platform_env(CELERY_BROKER_URL=rabbitmq_url)
    # A worker of another pool declares the delayed-delivery exchanges and binds every queue.
    worker = Proc("default", worker_argv("d", queues="default", concurrency=1, loglevel="INFO"), env, tmp_path)
    with running([worker]):
        worker.wait_ready()
    flush(rabbitmq_url, "", ("ai",))
    subprocess.run([sys.executable, "-c", PUBLISH_DELAYED], cwd=ROOT, env=env, check=True, timeout=60)
    # Not in the ai queue at once (it waits in celery_delayed_*), then there. The countdown
    # leaves a loaded machine's subprocess exit and first read well inside it.
    reader = queue_reader(rabbitmq_url)
    assert reader.read(["ai"])["ai"][0] == 0
    wait_for(lambda: reader.read(["ai"])["ai"][0] == 1, 60, "the delayed task in the ai queue")
    reader.close()
