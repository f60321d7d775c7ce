"""Celery configuration: queues, routes, limits. Read by tasks.app at import.

Queues are named by workload so operators scale each pool on its own (see the
Procfile). Time limits stay under the broker's visibility timeout so a task that
runs long is killed before the broker hands it to a second worker.
"""
from __future__ import annotations

from kombu import Exchange, Queue

from schedules.beat import beat_schedule as _beat_schedule
from settings import get_settings, is_rabbitmq

_settings = get_settings()

broker_url = _settings.broker_url
result_backend = _settings.result_backend

QUEUES = ("default", "send", "webhooks", "ai", "analytics", "ml")
_amqp = is_rabbitmq(broker_url)
if _amqp:
    # RabbitMQ: quorum queues (replicated, durable, a delivery count per message) for
    # every pool. Their exchanges are topic exchanges because Celery delays a countdown
    # task (ai.draft's retry) through RabbitMQ's native delayed delivery, which cannot
    # route back through a direct exchange; a quorum queue has no global QoS, which
    # worker_detect_quorum_queues (on by default) turns off for us.
    task_queues = tuple(Queue(name, Exchange(name, type="topic"), routing_key=name,
                              queue_arguments={"x-queue-type": "quorum"}) for name in QUEUES)
else:
    task_queues = tuple(Queue(name) for name in QUEUES)
worker_detect_quorum_queues = True
task_default_queue = "default"
task_create_missing_queues = False

# Task names are "<area>.<verb>"; the area decides the pool.
task_routes = {
    "sequencing.*": {"queue": "default"},
    "audience.*": {"queue": "default"},
    "warming.*": {"queue": "default"},
    "broadcasts.*": {"queue": "default"},
    "sending.*": {"queue": "send"},
    "webhooks.*": {"queue": "webhooks"},
    "ai.*": {"queue": "ai"},
    "analytics.*": {"queue": "analytics"},
    "ml.*": {"queue": "ml"},
}

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
task_ignore_result = True
result_expires = 3600
timezone = "UTC"
enable_utc = True

# Late acks: a task is removed from the queue only after it finishes, so a worker
# killed mid-task loses nothing the broker held. Recovery of the work itself comes
# from the database (leases), so a task that kills its worker is not redelivered
# forever: reject_on_worker_lost stays False. How an unacked task comes back
# differs by broker: Redis hands it out again after VISIBILITY_TIMEOUT, RabbitMQ at
# once when the dead worker's connection closes (docs/operations.md, "RabbitMQ").
# Either way a redelivered or second task finds its rows claimed or sent: the
# outbox's leases, not the broker, are what send each email once.
task_acks_late = True
task_reject_on_worker_lost = False
worker_prefetch_multiplier = 1

VISIBILITY_TIMEOUT = 3600
broker_transport_options: dict[str, object] = {}
result_backend_transport_options: dict[str, object] = {}
# These options are Redis's: kombu's SQLAlchemy transport (the embedded broker)
# hands its options to create_engine(), which refuses them.
_redis = broker_url.startswith(("redis", "rediss"))
if _redis:
    broker_transport_options["visibility_timeout"] = VISIBILITY_TIMEOUT
if result_backend.startswith(("redis", "rediss")):
    result_backend_transport_options["visibility_timeout"] = VISIBILITY_TIMEOUT
if _amqp:
    # Publisher confirms: a publish returns once RabbitMQ has taken the message, so a
    # dispatch recorded in the database is not lost in a client's socket buffer.
    broker_transport_options["confirm_publish"] = True
if _settings.broker_prefix and _redis:
    # Several platforms (or test runs) can share one Redis without seeing each other's queues.
    broker_transport_options["global_keyprefix"] = _settings.broker_prefix
    result_backend_transport_options["global_keyprefix"] = _settings.broker_prefix
task_soft_time_limit = 300
task_time_limit = 360
broker_connection_retry_on_startup = True
worker_send_task_events = True
task_send_sent_event = True
worker_hijack_root_logger = False

# Each ai worker starts at most this many drafts a minute: a draft's own work (the
# pre-flight of every email, SpamAssassin included) is CPU that sending shares, and
# a model server answering at once would otherwise let a burst of drafts take the cores.
if _settings.ai_drafts_per_minute:
    task_annotations = {"ai.draft": {"rate_limit": f"{_settings.ai_drafts_per_minute}/m"}}

beat_schedule = _beat_schedule(_settings.tick_seconds)
