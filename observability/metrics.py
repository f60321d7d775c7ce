"""Prometheus metrics: HTTP requests, Celery task outcomes, and database gauges.

Why this design, given that web and workers are separate processes (often on
separate hosts):

* **Celery task counts live in Redis** when ``REDIS_URL`` is set. Celery signals
  (``task_success``, ``task_failure``, ``task_retry``) fire inside whichever worker
  process ran the task, and that process serves no HTTP. Each outcome is one
  ``HINCRBY`` on a hash under the run's key prefix; the web process reads the hash at
  scrape time. This works across hosts and containers (prometheus_client's
  multiprocess mode only works for processes sharing a directory) and costs one
  round trip per task, negligible beside the task's own database work. The totals are
  cluster-wide: every web replica reports the same series, so aggregate them with
  ``max`` rather than ``sum``.
* **Without Redis** (the embedded ``make run`` mode, one host), the same outcomes go
  to a prometheus_client Counter; ``scripts/run_local.py`` sets
  ``PROMETHEUS_MULTIPROC_DIR`` for all of its children, so the web process
  aggregates the worker's counts from that shared directory. With neither Redis nor
  that directory, task counts stay inside the worker and are not exported.
* **HTTP metrics** are ordinary prometheus_client metrics in the web process. Under
  gunicorn with several workers, set ``PROMETHEUS_MULTIPROC_DIR`` (the Procfile's
  ``web`` line does) so a scrape sums every gunicorn worker rather than showing one.
* **Enrollment and message gauges** are read from the database at scrape time, never
  by counting whole tables: those grow without end (a million messages took a
  parallel scan of about 0.4 s per scrape, per web process, and ``messages`` has no
  index on ``status`` at all). On PostgreSQL the live statuses (messages not yet
  settled, active and paused enrollments) are counted exactly through the indexes
  that hold only them; the settled ones (sent, failed, suppressed; completed,
  exited, failed) are the planner's estimate, the table's row estimate times each
  status's share, as of the table's last ANALYZE, which autovacuum runs as the
  table changes (``eseq_metrics_statistics_age_seconds`` says how old). A table
  under 100,000 rows, and SQLite (the embedded mode, one small machine), are
  counted exactly. A statement timeout stops a
  scrape from ever holding a connection for long.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import DateTime, bindparam, text

from delivery.routing import CIRCUIT_COOLDOWN
from models.base import utcnow

log = logging.getLogger(__name__)

TASK_COUNTS_KEY = "eseq:metrics:celery_tasks"
_FIELD_SEP = "|"

HTTP_REQUESTS = Counter(
    "eseq_http_requests", "HTTP requests answered, by method, url rule and status.",
    ["method", "endpoint", "status"],
)
HTTP_LATENCY = Histogram(
    "eseq_http_request_duration_seconds", "Time to answer an HTTP request, by method, url rule and status.",
    ["method", "endpoint", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# Only worker processes without Redis create this (lazily), so a web process in
# Redis mode never registers a series whose name the Redis collector also emits.
_local_task_counter: Counter | None = None
_local_lock = threading.Lock()


def multiprocess_dir() -> str | None:
    """The shared directory of prometheus_client's multiprocess mode, if this process uses it."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def observe_http(method: str, endpoint: str, status: int, seconds: float) -> None:
    """Record one answered request; ``endpoint`` is the url rule, never the raw path,
    so ids in paths cannot explode the number of series."""
    labels = (method, endpoint, str(status))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_LATENCY.labels(*labels).observe(seconds)


class TaskCounts:
    """Where task outcomes are counted: a Redis hash when Redis is configured, else a
    process-local (or multiprocess-directory) Counter."""

    def __init__(self, redis_url: str | None, prefix: str = "") -> None:
        self.redis_url = redis_url
        self.key = prefix + TASK_COUNTS_KEY
        self._client: Any = None

    def _redis(self) -> Any:
        if self._client is None:
            import redis

            # Short timeouts: a Redis outage must not stall task completion.
            self._client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=1, socket_timeout=1)
        return self._client

    def record(self, task_name: str, state: str) -> None:
        """Count one outcome; a failure to count is logged, never raised into the task."""
        if self.redis_url:
            try:
                self._redis().hincrby(self.key, f"{task_name}{_FIELD_SEP}{state}", 1)
            except Exception as exc:  # metrics are best effort
                log.warning("task metric not recorded", extra={"error": type(exc).__name__})
            return
        global _local_task_counter
        with _local_lock:
            if _local_task_counter is None:
                _local_task_counter = Counter("eseq_celery_tasks", "Celery task outcomes, by task name and state.",
                                              ["task", "state"])
        _local_task_counter.labels(task_name, state).inc()

    def read(self) -> dict[tuple[str, str], int]:
        """The cluster-wide counts from Redis (empty without Redis)."""
        if not self.redis_url:
            return {}
        raw = self._redis().hgetall(self.key)
        counts: dict[tuple[str, str], int] = {}
        for field, value in raw.items():
            name, _, state = field.decode().rpartition(_FIELD_SEP)
            counts[(name, state)] = int(value)
        return counts


def connect_celery_signals(counts: TaskCounts) -> None:
    """Count every task's success, failure and retry in the process that ran it."""
    from celery.signals import task_failure, task_retry, task_success

    def _name(sender: Any, kwargs: dict[str, Any]) -> str:
        return str(getattr(sender, "name", None) or getattr(kwargs.get("request"), "task", None) or "unknown")

    def _on_success(sender: Any = None, **kwargs: Any) -> None:
        counts.record(_name(sender, kwargs), "succeeded")

    def _on_failure(sender: Any = None, **kwargs: Any) -> None:
        counts.record(_name(sender, kwargs), "failed")

    def _on_retry(sender: Any = None, **kwargs: Any) -> None:
        counts.record(_name(sender, kwargs), "retried")

    # weak=False: the handlers are closures that nothing else keeps alive. The uids
    # keep a second worker started in one process (tests) from counting twice.
    task_success.connect(_on_success, weak=False, dispatch_uid="eseq-task-success")
    task_failure.connect(_on_failure, weak=False, dispatch_uid="eseq-task-failure")
    task_retry.connect(_on_retry, weak=False, dispatch_uid="eseq-task-retry")


class RedisTaskCollector(Collector):
    """Exports the Redis task counts at scrape time."""

    def __init__(self, counts: TaskCounts) -> None:
        self.counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("eseq_celery_tasks", "Celery task outcomes, by task name and state.",
                                     labels=["task", "state"])
        try:
            for (name, state), value in sorted(self.counts.read().items()):
                family.add_metric([name, state], value)
        except Exception as exc:
            log.warning("task metrics unreadable", extra={"error": type(exc).__name__})
        yield family


# One named place for the scrape-time queries: labels, SQL whose rows are the label
# values then one value per gauge, and those gauges as (name, help). The status
# counts use an index leading with status; the provider and warming tables are
# small. Each plan's latest day is read once for all six of its gauges.
_QUERIES: tuple[tuple[tuple[str, ...], str, tuple[tuple[str, str], ...]], ...] = (
    (("provider_id", "state"),
     "SELECT id, CASE WHEN circuit_state = 'open' AND circuit_opened_at <= :cooled THEN 'half_open' "
     "ELSE circuit_state END, 1 FROM providers",
     (("eseq_provider_circuit", "1 for each provider's current circuit state (closed, open, half_open)."),)),
    (("plan_id", "status"), "SELECT id, status, 1 FROM warming_plans",
     (("eseq_warming_plan", "1 for each warming plan's status (warming, held, paused, completed)."),)),
    (("plan_id", "group"),
     "SELECT plan_id, grp, day, cap, reserved, sent, bounced, complained FROM warming_days d "
     "WHERE d.day = (SELECT max(day) FROM warming_days w WHERE w.plan_id = d.plan_id)",
     (("eseq_warming_day", "Each warming plan's latest day: its number, by mailbox-provider group."),
      ("eseq_warming_cap", "Each warming plan's cap on its latest day, by mailbox-provider group."),
      ("eseq_warming_reserved", "Cap slots reserved by send workers on the latest day, by group."),
      ("eseq_warming_sent", "Messages sent on the latest day (as last read by beat), by group."),
      ("eseq_warming_bounced", "Bounces of the latest day's messages (as last read), by group."),
      ("eseq_warming_complained", "Complaints about the latest day's messages (as last read), by group."))),
    (("metric",), "SELECT metric, sum(uniques) FROM sequence_rollups WHERE day = :today GROUP BY metric",
     (("eseq_outcomes_today", "Sequences' messages with each outcome (sent, delivered, opened, clicked, bounced, "
                              "complained, unsubscribed...) first seen today (UTC), every account, as the "
                              "analytics pool last folded them."),)),
)


# Per table: its gauge, its live statuses (counted exactly, through an index
# holding only them), the settled ones (estimated on PostgreSQL), and the condition
# that selects the live rows.
_STATUS_GAUGES: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...], str], ...] = (
    ("enrollments", "eseq_enrollments", "Enrollments by status (settled ones estimated: see the statistics age).",
     ("active", "paused"), ("completed", "exited", "failed"), "status IN ('active', 'paused')"),
    ("messages", "eseq_messages",
     "Messages (the outbox and delivery log) by status (settled ones estimated: see the statistics age).",
     ("queued", "sending", "deferred"), ("sent", "failed", "suppressed"), "NOT settled"),  # ix_messages_unsettled
)
# Each status's share of the table times its row estimate, from pg_stats (a status
# column has so few values that ANALYZE keeps every one it saw).
_ESTIMATES = ("SELECT s.tablename, v.status, round(greatest(c.reltuples, 0) * v.freq) "
              "FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename AND c.relnamespace = "
              "(SELECT oid FROM pg_namespace WHERE nspname = current_schema()) "
              "CROSS JOIN LATERAL unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS v(status, freq) "
              "WHERE s.schemaname = current_schema() AND s.attname = 'status' "
              "AND s.tablename IN ('enrollments', 'messages')")
_STATISTICS_AGE = ("SELECT relname, extract(epoch FROM now() - greatest(last_analyze, last_autoanalyze)) "
                   "FROM pg_stat_user_tables WHERE schemaname = current_schema() "
                   "AND relname IN ('enrollments', 'messages') "
                   "AND greatest(last_analyze, last_autoanalyze) IS NOT NULL")


_ROW_ESTIMATES = "SELECT relname, reltuples FROM pg_class WHERE oid IN ('enrollments'::regclass, 'messages'::regclass)"
# Below this many rows (as last estimated, or never analyzed) a table is counted
# exactly: a few milliseconds, and ANALYZE keeps no per-status shares for a table
# of a handful of rows.
EXACT_BELOW_ROWS = 100_000


def _exact(table: str) -> str:
    return f"SELECT status, count(*) FROM {table} GROUP BY status"


def _live(table: str, live_rows: str) -> str:
    return f"SELECT status, count(*) FROM {table} WHERE {live_rows} GROUP BY status"


def status_queries(dialect: str) -> list[str]:
    """The SQL of one scrape's status counts on ``dialect`` for a large table (the
    benchmark prints their plans)."""
    if dialect != "postgresql":
        return [_exact(table) for table, *_ in _STATUS_GAUGES]
    return [_live(table, live_rows) for table, *_, live_rows in _STATUS_GAUGES] + [_ESTIMATES]


def _by_status(conn: Any, sql: str) -> dict[str, int]:
    return {str(status): int(n) for status, n in conn.execute(text(sql))}


def _status_counts(conn: Any, exact_below: int) -> tuple[dict[str, dict[str, int]], dict[str, float]]:
    """By table, each status's count; and, on PostgreSQL, the age of each table's statistics."""
    counts: dict[str, dict[str, int]] = {table: {} for table, *_ in _STATUS_GAUGES}
    if conn.dialect.name != "postgresql":
        return {table: _by_status(conn, _exact(table)) for table in counts}, {}
    small = {str(table) for table, rows in conn.execute(text(_ROW_ESTIMATES)) if rows < exact_below}
    analyzed: set[str] = set()
    if len(small) < len(counts):
        for table, status, estimate in conn.execute(text(_ESTIMATES)):
            counts[table][status] = int(estimate)
            analyzed.add(table)
    for table, _, _, live, settled, live_rows in _STATUS_GAUGES:
        if table in small:
            counts[table] = _by_status(conn, _exact(table))
            continue
        found = _by_status(conn, _live(table, live_rows))
        for status in live:  # exact, so a status with no row is a known zero
            counts[table][status] = found.get(status, 0)
        if table in analyzed:  # a settled status ANALYZE never saw is too rare to estimate above zero
            for status in settled:
                counts[table].setdefault(status, 0)
        else:  # never analyzed: no estimate of the settled statuses at all, rather than a false zero
            counts[table] = {status: n for status, n in counts[table].items() if status in live}
    ages = {str(table): float(age) for table, age in conn.execute(text(_STATISTICS_AGE))}
    return counts, ages


_STATEMENTS = {sql: text(sql).bindparams(bindparam("cooled", type_=DateTime(timezone=True))) if ":cooled" in sql
               else text(sql) for _, sql, _ in _QUERIES}


def _params(sql: str) -> dict[str, Any]:
    """The values a scrape-time query names: when a circuit's cool-down ends, today's UTC date."""
    now = utcnow()
    return {name: value for name, value in (("cooled", now - CIRCUIT_COOLDOWN), ("today", now.date()))
            if f":{name}" in sql}


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time; ``eseq_metrics_database_up`` says
    whether the read worked, so a dashboard tells "zero" from "unknown"."""

    def __init__(self, engine_factory: Callable[[], Any], timeout_ms: int = 2000,
                 exact_below: int = EXACT_BELOW_ROWS) -> None:
        self.engine_factory = engine_factory
        self.timeout_ms = timeout_ms
        self.exact_below = exact_below

    def _read(self) -> tuple[dict[str, dict[str, int]], dict[str, float], list[list[Any]]]:
        engine = self.engine_factory()
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"SET LOCAL statement_timeout = {int(self.timeout_ms)}"))
            counts, ages = _status_counts(conn, self.exact_below)
            # An open circuit past its cool-down shows as half_open (routing.circuit_as_seen).
            rows = [list(conn.execute(_STATEMENTS[sql], _params(sql))) for _, sql, _ in _QUERIES]
            return counts, ages, rows

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("eseq_metrics_database_up", "1 when the scrape-time database read worked.")
        try:
            counts, ages, results = self._read()
        except Exception as exc:
            log.warning("database gauges unreadable", extra={"error": type(exc).__name__})
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for table, name, doc, *_ in _STATUS_GAUGES:
            family = GaugeMetricFamily(name, doc, labels=["status"])
            for status, value in sorted(counts[table].items()):
                family.add_metric([status], value)
            yield family
        age = GaugeMetricFamily("eseq_metrics_statistics_age_seconds",
                                "Seconds since the table's last ANALYZE (PostgreSQL): how old its settled-status "
                                "estimates are.", labels=["table"])
        for table, seconds in sorted(ages.items()):
            age.add_metric([table], seconds)
        yield age
        for (labels, _, gauges), rows in zip(_QUERIES, results):
            for index, (name, doc) in enumerate(gauges, start=len(labels)):
                family = GaugeMetricFamily(name, doc, labels=list(labels))
                for row in rows:
                    family.add_metric([str(v) for v in row[:len(labels)]], int(row[index]))
                yield family


def render(extra: list[Collector]) -> tuple[bytes, str]:
    """The exposition text for one scrape: this process's (or every process's, in
    multiprocess mode) metrics, followed by the scrape-time collectors."""
    path = multiprocess_dir()
    if path:
        from prometheus_client import multiprocess

        base = CollectorRegistry()
        multiprocess.MultiProcessCollector(base, path=path)
    else:
        base = REGISTRY
    scrape = CollectorRegistry(auto_describe=False)
    for collector in extra:
        scrape.register(collector)
    return generate_latest(base) + generate_latest(scrape), CONTENT_TYPE_LATEST
