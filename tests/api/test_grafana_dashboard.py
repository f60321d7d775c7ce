"""docs/grafana-dashboard.json queries the platform's metrics by name: a renamed or
dropped metric would leave a panel empty with no error anywhere. Every metric name
its PromQL uses must be one a real /metrics scrape of the app exports (with this
run's PostgreSQL and Redis, so every scrape-time collector answers), and the file
must stay importable with the Prometheus data source chosen at import."""
from __future__ import annotations

import json
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import METRICS_TOKEN
from tests.support.grafana import DASHBOARD, dashboard_queries, metric_names, panels

# Series of each type, as the text exposition names them.
_SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum", "_created"),
             "summary": ("", "_count", "_sum", "_created"), "untyped": ("",), "info": ("_info",),
             "stateset": ("",), "gaugehistogram": ("_bucket", "_gcount", "_gsum")}


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


def test_every_metric_the_dashboard_queries_is_one_the_platform_exports(client: Any) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    used = set().union(*(metric_names(q) for q in dashboard_queries(dashboard)))
    exported = exported_names(client)
    assert used - exported == set(), f"the dashboard queries metrics /metrics does not export: {used - exported}"
    # What issue 23 asks the dashboard to show: sends and outcomes, queues, circuits.
    assert {"eseq_celery_tasks_total", "eseq_messages", "eseq_queue_depth", "eseq_queue_oldest_task_age_seconds",
            "eseq_provider_circuit", "eseq_outcomes_today", "eseq_warming_bounced", "eseq_warming_complained"} <= used


def test_the_dashboard_imports_with_a_prometheus_data_source_chosen_at_import() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    shown = list(panels(dashboard))
    ids = [panel["id"] for panel in shown]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in shown:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        assert [t["refId"] for t in panel["targets"]] == sorted({t["refId"] for t in panel["targets"]}), panel["title"]
    assert "uid" in dashboard and "schemaVersion" in dashboard and "id" not in dashboard
