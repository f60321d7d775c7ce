"""The Celery application, configured from celeryconfig.py."""
from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from models import db
from observability.logs import configure_logging
from observability.metrics import TaskCounts, connect_celery_signals
from observability.sentry import init_sentry
from settings import get_settings

TASK_MODULES = ["tasks.sequencing", "tasks.sending", "tasks.webhooks", "tasks.audience", "tasks.inbound",
                "tasks.warming"]

app = Celery("eseq", include=TASK_MODULES)
app.config_from_object("celeryconfig")

_settings = get_settings()
configure_logging()
init_sentry(_settings, component="worker")
db.configure(_settings.database_url)
connect_celery_signals(TaskCounts(_settings.redis_url, _settings.broker_prefix))


@worker_process_init.connect
def _reset_db_pool(**_: Any) -> None:
    # Prefork children inherit the parent's pooled sockets; sharing them corrupts
    # the protocol stream, so each child starts a fresh pool.
    db.after_fork()
