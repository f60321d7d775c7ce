"""``/metrics`` (Prometheus text) and the request hooks that time every answer.

The design (what is counted where, and why it works across processes) is in
``observability/metrics.py``.
"""
from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client.registry import Collector

from models import db
from observability.metrics import DatabaseCollector, RedisTaskCollector, TaskCounts, observe_http, render
from settings import Settings

bp = Blueprint("metrics", __name__)
_UNMATCHED = "<unmatched>"  # 404s share one label instead of one series per probed path


def init_metrics(app: Flask, settings: Settings) -> None:
    """Time every request and register ``/metrics``; scrape-time collectors live on the app."""
    collectors: list[Collector] = [DatabaseCollector(db.get_engine)]
    if settings.redis_url:
        collectors.append(RedisTaskCollector(TaskCounts(settings.redis_url, settings.broker_prefix)))
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

    app.register_blueprint(bp)


@bp.get("/metrics")
def metrics() -> Response:
    body, content_type = render(current_app.extensions["eseq_metrics_collectors"])
    return Response(body, content_type=content_type)
