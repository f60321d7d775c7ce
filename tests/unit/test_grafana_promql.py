"""The Grafana dashboard's PromQL must parse: Grafana shows a bad query only as a red
corner on one panel. promtool (Debian's ``prometheus`` package) parses each one as a
recording rule, with Grafana's variables as Grafana fills them. Which metrics they
name is checked against a real scrape in tests/api/test_grafana_dashboard.py."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.grafana import DASHBOARD, as_prometheus_runs_it, dashboard_queries, metric_names


def test_the_name_reader_finds_metrics_and_nothing_else() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, endpoint) (rate(eseq_http_request_duration_seconds_bucket'
            '{job=~"$job", endpoint="/t/o/<token>.gif"}[$__rate_interval]))) / on (job) group_left '
            'clamp_min(max without (instance) (eseq_queue_depth offset 5m), 1) or vector(0)')
    assert metric_names(expr) == {"eseq_http_request_duration_seconds_bucket", "eseq_queue_depth"}
    assert metric_names('count(max by (provider_id) (eseq_provider_circuit{state="open"}) == 1)') == {
        "eseq_provider_circuit"}


def _promtool_check(queries: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": as_prometheus_runs_it(q)} for i, q in enumerate(queries)]}]}
    path = folder / "dashboard-rules.json"  # JSON is YAML: promtool reads it as a rules file
    path.write_text(json.dumps(rules))
    return subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_every_dashboard_query_parses_as_promql(tmp_path: Path) -> None:
    queries = dashboard_queries(json.loads(DASHBOARD.read_text()))
    checked = _promtool_check(queries, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(queries)} rules found" in checked.stdout
    # And promtool does refuse what is not PromQL, so the pass above means something.
    assert _promtool_check(["sum by (queue (eseq_queue_depth)"], tmp_path).returncode != 0
