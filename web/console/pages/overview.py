"""The overview: what the account sent and how it went, and whether the pools are keeping up.

The counts come from the analytics rollups, as a sequence's ``/analytics`` does
(``analytics.account_totals``), after the same small catch-up fold. Queue depths
come from the broker through the reader ``/metrics`` already keeps
(``observability.queues``); workers alive from the heartbeat table
(``core.liveness.workers_alive``) in the page itself, since ``inspect().ping()`` waits
its whole timeout for answers and fails on a broker that is down; the page then asks
``workers.json`` for the workers answering Celery's ping, by pool (static/overview.js).
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import current_app, g, jsonify, render_template

from analytics.account_totals import OUTCOMES, account_counts, as_of
from analytics.experiment_results import catch_up
from celeryconfig import QUEUES
from core.liveness import workers_alive
from models import utcnow
from observability.queues import QueueCollector
from web.console import bp
from web.console.session import signed_in
from web.db import get_db

log = logging.getLogger(__name__)


def queue_depths() -> list[dict[str, Any]] | None:
    """Each pool's queue: waiting tasks and the oldest one's age (None where the broker
    cannot tell); None when there is no broker to read (embedded) or it is unreachable."""
    collectors = current_app.extensions.get("eseq_metrics_collectors", [])
    reader = next((c.reader for c in collectors if isinstance(c, QueueCollector)), None)
    if reader is None:
        return None
    try:
        found = reader.read(QUEUES)
    except Exception as exc:  # a page must render with the broker down: it says so instead
        log.warning("console: queue depths unreadable", extra={"error": type(exc).__name__})
        return None
    return [{"queue": name, "depth": depth, "oldest_seconds": age} for name, (depth, age) in found.items()]


@bp.get("/")
@signed_in
def overview() -> Any:
    session = get_db()
    now = utcnow()
    catch_up(session, g.account_id, now)
    today = now.date()
    settings = current_app.config["ESEQ_SETTINGS"]
    return render_template(
        "console/overview/index.html", title="Overview", outcomes=OUTCOMES,
        today=account_counts(session, g.account_id, today),
        month=account_counts(session, g.account_id, today - timedelta(days=29)),
        as_of=as_of(session, g.account_id), queues=queue_depths(), embedded=settings.embedded,
        workers=workers_alive(session, now, timedelta(seconds=settings.worker_dead_after_seconds)),
        flower_url=settings.flower_url)


@bp.get("/workers.json")
@signed_in
def workers_json() -> Any:
    """The workers answering Celery's ping, by pool; 503 when the broker cannot be asked."""
    from tasks.workers import answering

    try:
        return jsonify({"pools": answering()})
    except Exception as exc:
        log.warning("console: workers could not be pinged", extra={"error": type(exc).__name__})
        return jsonify({"error": "The broker could not be asked: is it up?"}), 503
