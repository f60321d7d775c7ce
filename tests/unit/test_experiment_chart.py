"""The experiment chart the console draws: a bar per arm at its rate, the winner
in green, each challenger's interval as a whisker around the control's rate, and
every name escaped."""
from __future__ import annotations

import re

from analytics.charts import experiment_bars
from analytics.experiments import experiment_report


def test_bars_follow_the_rates_and_the_winner() -> None:
    report = experiment_report(0, {"metric": "opened"}, [{"name": "A", "sent": 1000, "successes": 100},
                                                         {"name": "B<&>", "sent": 1000, "successes": 300}])
    svg = experiment_bars(report)
    assert report["winner"] == "B<&>"
    widths = {name: float(w) for name, w in re.findall(
        r'data-arm="([^"]+)">.*?<rect x="\d+" y="[\d.]+" width="([\d.]+)"', svg, re.S)}
    assert set(widths) == {"A", "B&lt;&amp;&gt;"}
    assert abs(widths["B&lt;&amp;&gt;"] / widths["A"] - 3.0) < 0.01  # 30% against 10%
    assert 'fill="#34a853"><title>B&lt;&amp;&gt;: 30.0% of 1,000' in svg  # the winner, green
    assert "B<&>" not in svg
    whiskers = re.findall(r'<line x1="([\d.]+)" x2="([\d.]+)"', svg)
    assert len(whiskers) == 1  # the control has no interval of its own
    low, high = report["variants"][1]["confidence_interval"]
    (x1, x2), = whiskers
    scale = widths["A"] / 0.1
    assert abs(float(x1) - (110 + (0.1 + low) * scale)) < 0.2 and abs(float(x2) - (110 + (0.1 + high) * scale)) < 0.2


def test_no_sends_yet_draws_empty_bars() -> None:
    report = experiment_report(2, {"metric": "clicked"}, [{"name": "A", "sent": 0, "successes": 0},
                                                          {"name": "B", "sent": 0, "successes": 0}])
    svg = experiment_bars(report)
    assert svg.startswith("<svg") and svg.count('width="0.0"') == 2
