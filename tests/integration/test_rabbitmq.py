"""The platform's Celery app on a real RabbitMQ (a vhost of this run's own): the
pools' queues are quorum queues, and a task a killed worker took without acking is
handed out again as soon as its connection drops, not after a visibility timeout as
on Redis (docs/operations.md, "RabbitMQ")."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from kombu import Connection

import celeryconfig
from tests.conftest import ROOT, RUN_ID
from tests.support.brokers import flush, rabbitmq_unavailable, rabbitmq_vhost
from tests.support.processes import platform_env
from tests.support.waiting import wait_for

# What a producer on amqp declares and publishes: every pool's queue, then one task
# for the default pool. Printed: each queue's arguments and the transport's options.
PUBLISH = """
import json
from tasks.app import app
with app.connection_for_write() as conn:
    for queue in app.amqp.queues.values():
        queue.bind(conn.default_channel).declare()
app.send_task("sequencing.rabbitmq_probe", args=[1], task_id="probe-1")
print(json.dumps({"queues": {name: q.queue_arguments for name, q in app.amqp.queues.items()},
                  "options": app.conf.broker_transport_options}))
"""

# A consumer that takes the task without acking it, says so, and waits to be killed.
TAKE = """
import sys, time
from kombu import Connection
with Connection(sys.argv[1]) as conn:
    message = conn.default_channel.basic_get("default", no_ack=False)
    print(message.properties["application_headers"]["id"], flush=True)
    time.sleep(120)
"""


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    reason = rabbitmq_unavailable()
    if reason:
        pytest.skip(reason)
    yield from rabbitmq_vhost(f"eseq-test-{RUN_ID}-int")


def _python(code: str, url: str, *args: str, **popen: object) -> subprocess.Popen:
    env = platform_env(CELERY_BROKER_URL=url)
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            text=True, start_new_session=True, **popen)  # type: ignore[call-overload]


def test_every_pool_gets_a_quorum_queue_and_publishes_are_confirmed(amqp_url: str):
    publisher = _python(PUBLISH, amqp_url)
    out, _ = publisher.communicate(timeout=60)
    assert publisher.returncode == 0
    said = json.loads(out.strip().splitlines()[-1])
    assert {name: args.get("x-queue-type") for name, args in said["queues"].items()} == \
        {name: "quorum" for name in celeryconfig.QUEUES}
    assert said["options"]["confirm_publish"] is True
    # What RabbitMQ itself declared, read back from the broker.
    listed = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", f"eseq-test-{RUN_ID}-int", "name", "type"],
                            check=True, capture_output=True, text=True, timeout=60).stdout
    types = dict(line.split("\t") for line in listed.splitlines()[1:] if "\t" in line)
    assert {name: types.get(name) for name in celeryconfig.QUEUES} == {name: "quorum" for name in celeryconfig.QUEUES}


def test_a_killed_consumers_unacked_task_is_redelivered_at_once(amqp_url: str):
    flush(amqp_url, "", celeryconfig.QUEUES)  # only this test's task in the queue
    publisher = _python(PUBLISH, amqp_url)
    publisher.communicate(timeout=60)
    assert publisher.returncode == 0
    taker = _python(TAKE, amqp_url, amqp_url)
    try:
        assert taker.stdout is not None
        assert taker.stdout.readline().strip() == "probe-1"  # taken, not acked
        with Connection(amqp_url) as conn:
            assert conn.default_channel.basic_get("default", no_ack=True) is None, "held by the live consumer"
            taker.send_signal(signal.SIGKILL)
            taker.wait(10)
            # The connection is gone: RabbitMQ requeues the task, marked redelivered, as
            # soon as it sees the socket close (a moment after the kill, not a timeout).
            again = wait_for(lambda: conn.default_channel.basic_get("default", no_ack=True), 5.0,
                             "the killed consumer's task back in the queue")
            assert again.properties["application_headers"]["id"] == "probe-1"
            assert again.delivery_info["redelivered"] is True
    finally:
        if taker.poll() is None:
            taker.kill()
            taker.wait(10)


def test_the_queue_depths_and_the_health_check_read_rabbitmq(amqp_url: str):
    from observability.queues import queue_reader
    from web.health import _check_broker

    flush(amqp_url, "", celeryconfig.QUEUES)
    publisher = _python(PUBLISH, amqp_url)
    publisher.communicate(timeout=60)
    assert publisher.returncode == 0
    reader = queue_reader(amqp_url)
    stats = reader.read(["default", "send", "no_such_queue"])
    # Counted, not aged: AMQP cannot look at a message and leave it where it is.
    assert stats == {"default": (1, None), "send": (0, None), "no_such_queue": (0, None)}
    assert reader.read(["default"]) == {"default": (1, None)}, "looking took nothing"
    reader.close()
    assert _check_broker(amqp_url) == "ok"
