"""``/metrics`` (Prometheus text) and the request hooks that time every answer.

The design (what is counted where, and why it works across processes) is in
``observability/metrics.py``.
"""
from __future__ import annotations

import hmac
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from flask_smorest import abort
from prometheus_client.registry import Collector

from celeryconfig import QUEUES
from models import db
from observability.metrics import DatabaseCollector, RedisTaskCollector, TaskCounts, observe_http, render
from observability.queues import QueueCollector, queue_reader
from settings import Settings
from web.extensions import limiter

bp = Blueprint("metrics", __name__)
_UNMATCHED = "<unmatched>"  # 404s share one label instead of one series per probed path


def init_metrics(app: Flask, settings: Settings) -> None:
    """Time every request and register ``/metrics``; scrape-time collectors live on the app."""
    collectors: list[Collector] = [DatabaseCollector(db.get_engine)]
    if settings.redis_url:
        collectors.append(RedisTaskCollector(TaskCounts(settings.redis_url, settings.broker_prefix)))
    # Every queue the Procfile's worker pools consume: the signals an autoscaler scales each pool on.
    reader = queue_reader(settings.broker_url, settings.broker_prefix)
    if reader is not None:
        collectors.append(QueueCollector(reader, QUEUES))
    app.extensions["eseq_metrics_collectors"] = collectors

    def _start_timer() -> None:
        g._eseq_started = time.perf_counter()

    # First of all before_request hooks: one that answers early (a refused request)
    # must still be timed and counted.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_timer)

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.pop("_eseq_started", None)
        if started is not None:
            rule = request.url_rule.rule if request.url_rule is not None else _UNMATCHED
            observe_http(request.method, rule, response.status_code, time.perf_counter() - started)
        return response

    # A scraper polls from one address: its authorized scrapes are never limited,
    # anything else is, like any other request.
    limiter.request_filter(lambda: request.blueprint == bp.name and _authorized())
    app.register_blueprint(bp)


def _authorized() -> bool:
    settings = current_app.config["ESEQ_SETTINGS"]
    if settings.metrics_token is None:
        return bool(settings.embedded)
    auth = request.authorization
    given = (auth.token or "") if auth is not None and auth.type == "bearer" else ""
    return hmac.compare_digest(given.encode(), settings.metrics_token.encode())


@bp.before_request
def _require_token() -> Response | None:
    """Open in the embedded mode (one machine, ``make run``); elsewhere a bearer token,
    as Prometheus sends with ``authorization: {credentials: ...}``. Checked before any
    database or Redis read, so a refused request costs nothing."""
    if _authorized():
        return None
    if current_app.config["ESEQ_SETTINGS"].metrics_token is None:
        abort(404, message="Metrics are disabled: set ESEQ_METRICS_TOKEN and scrape with "
                           "'Authorization: Bearer <ESEQ_METRICS_TOKEN>'.")
    abort(401, message="Metrics token required in 'Authorization: Bearer <ESEQ_METRICS_TOKEN>'.")
    return None


@bp.get("/metrics")
def metrics() -> Response:
    body, content_type = render(current_app.extensions["eseq_metrics_collectors"])
    return Response(body, content_type=content_type)
