"""Reading docs/grafana-dashboard.json: its panels and the PromQL they run, and the
metric names that PromQL selects (the dashboard's tests compare them with /metrics
and have promtool parse them)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tests.support.procfile import ROOT

DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
# Grafana's variables, as a query runs with "All" chosen and Grafana's default rate window.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$job": ".*", "$queue": ".*"}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_NAME = re.compile(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)(?![\w:]|\s*\()")
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
             "offset", "inf", "nan", "atan2"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: neither its functions, nor its
    keywords, label names, label values or durations."""
    expr = _STRING.sub('""', expr)
    expr = _MATCHERS.sub("", expr)
    expr = _RANGE.sub("", expr)
    expr = _LABEL_LIST.sub("", expr)
    return {name for name in _NAME.findall(expr) if name.lower() not in _KEYWORDS}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside rows too."""
    def walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from walk(panel.get("panels", []))

    return walk(dashboard["panels"])


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: its panels' targets and its variables' queries."""
    queries = [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        found = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
        queries.append(found.group(1) if found else query)
    return queries


def as_prometheus_runs_it(query: str) -> str:
    """``query`` with Grafana's variables replaced, as Grafana sends it."""
    for variable, value in GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    return query
