"""The Celery application, configured from celeryconfig.py."""
from __future__ import annotations

from typing import Any

from celery import Celery
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.signals import (beat_init, before_task_publish, worker_init, worker_process_init, worker_process_shutdown,
                            worker_ready, worker_shutdown)

from models import db
from observability.logs import configure_logging
from observability.metrics import TaskCounts, connect_celery_signals
from observability.queues import connect_publish_stamp
from observability.sentry import init_sentry
from settings import get_settings, is_rabbitmq
from tasks.broker import declare_every_queue, use_reused_clients
from tasks.liveness import start_heartbeat, stop_heartbeat

TASK_MODULES = ["tasks.sequencing", "tasks.sending", "tasks.webhooks", "tasks.audience", "tasks.inbound",
                "tasks.warming", "tasks.analytics", "tasks.ml", "tasks.ai", "tasks.broadcasts"]

use_reused_clients()
app = Celery("eseq", include=TASK_MODULES)
app.config_from_object("celeryconfig")
# Every publisher (web, beat, workers) stamps its tasks, so /metrics can tell how
# long the oldest one has waited (observability/queues.py).
connect_publish_stamp()

_settings = get_settings()
configure_logging()
db.configure(_settings.database_url, _settings.secrets_keys, pool_size=_settings.db_pool_size,
             max_overflow=_settings.db_max_overflow)


# Sentry and the task counters belong to the worker and beat processes, not to
# every importer: the web process imports this module to enqueue, and must keep
# its own Sentry client (server_name "web") and not count tasks it never runs.
@worker_init.connect
def _init_worker(**_: Any) -> None:
    init_sentry(_settings, component="worker")
    connect_celery_signals(TaskCounts(_settings.redis_url, _settings.broker_prefix))
    if is_rabbitmq(_settings.broker_url):
        # Before the consumer starts: its delayed-delivery step binds every pool's queue.
        declare_every_queue(app.connection_for_write(), app.amqp.queues.values())


@beat_init.connect
def _init_beat(**_: Any) -> None:
    init_sentry(_settings, component="beat")


@worker_process_init.connect
def _init_child(**_: Any) -> None:
    # Prefork children inherit the parent's pooled sockets; sharing them corrupts
    # the protocol stream, so each child starts a fresh pool, then its heartbeat.
    db.after_fork()
    start_heartbeat()


@worker_ready.connect
def _beat_from_the_start(sender: Any, **_: Any) -> None:
    # A threads or solo pool runs its tasks in this process. A prefork parent runs
    # none, and its children beat from their own start: a thread here would be
    # forked into every child it starts later.
    if not isinstance(sender.pool, PreforkPool):
        start_heartbeat()


@worker_process_shutdown.connect  # a prefork child leaving (a warm shutdown, max-tasks-per-child)
@worker_shutdown.connect  # the worker itself, whose threads ran the tasks in a threads or solo pool
def _say_stopped(**_: Any) -> None:
    # A kill -9 never gets here, which is how the tick tells a kill from a stop
    # (sequencing.dead_workers).
    stop_heartbeat()
