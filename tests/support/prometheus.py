"""Reading one series out of Prometheus exposition text, for the metrics tests."""
from __future__ import annotations

import re


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus text, or None when absent."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        series, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', series))
        if series.split("{")[0] == name and all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return None
