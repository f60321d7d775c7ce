"""docs/grafana-dashboard.json queries the platform's metrics by name: a renamed or
dropped metric would leave a panel empty with no error anywhere. Every metric name
its PromQL uses must be one a real /metrics scrape of the app exports (with this
run's PostgreSQL and Redis, so every scrape-time collector answers), and the file
must stay importable with the Prometheus data source chosen at import."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import METRICS_TOKEN, ROOT

DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_NAME = re.compile(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)(?![\w:]|\s*\()")
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
             "offset", "inf", "nan", "atan2"}
# Series of each type, as the text exposition names them.
_SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum", "_created"),
             "summary": ("", "_count", "_sum", "_created"), "untyped": ("",), "info": ("_info",),
             "stateset": ("",), "gaugehistogram": ("_bucket", "_gcount", "_gsum")}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: neither its functions, nor its
    keywords, label names, label values or durations."""
    expr = _STRING.sub('""', expr)
    expr = _MATCHERS.sub("", expr)
    expr = _RANGE.sub("", expr)
    expr = _LABEL_LIST.sub("", expr)
    return {name for name in _NAME.findall(expr) if name.lower() not in _KEYWORDS}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: its panels' targets and its variables' queries."""
    queries = [target["expr"] for panel in _panels(dashboard["panels"]) for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        found = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
        queries.append(found.group(1) if found else query)
    return queries


def exported_names(client: Any) -> set[str]:
    """Every series name a real scrape can hold, from each family's type (a family with
    no sample yet, such as the latency histogram before a request, still counts)."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    names: set[str] = set()
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
        names.update(sample.name for sample in family.samples)
    return names


def test_the_name_reader_finds_metrics_and_nothing_else() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, endpoint) (rate(eseq_http_request_duration_seconds_bucket'
            '{job=~"$job", endpoint="/t/o/<token>.gif"}[$__rate_interval]))) / on (job) group_left '
            'clamp_min(max without (instance) (eseq_queue_depth offset 5m), 1) or vector(0)')
    assert metric_names(expr) == {"eseq_http_request_duration_seconds_bucket", "eseq_queue_depth"}
    assert metric_names('count(max by (provider_id) (eseq_provider_circuit{state="open"}) == 1)') == {
        "eseq_provider_circuit"}


def test_every_metric_the_dashboard_queries_is_one_the_platform_exports(client: Any) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    used = set().union(*(metric_names(q) for q in dashboard_queries(dashboard)))
    exported = exported_names(client)
    assert used - exported == set(), f"the dashboard queries metrics /metrics does not export: {used - exported}"
    # What issue 23 asks the dashboard to show: sends and outcomes, queues, circuits.
    assert {"eseq_celery_tasks_total", "eseq_messages", "eseq_queue_depth", "eseq_queue_oldest_task_age_seconds",
            "eseq_provider_circuit", "eseq_warming_bounced", "eseq_warming_complained"} <= used


def test_the_dashboard_imports_with_a_prometheus_data_source_chosen_at_import() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panels = list(_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        assert [t["refId"] for t in panel["targets"]] == sorted({t["refId"] for t in panel["targets"]}), panel["title"]
    assert "uid" in dashboard and "schemaVersion" in dashboard and "id" not in dashboard
