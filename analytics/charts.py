"""SVG charts an operator opens in a browser: the cohort table as a heatmap, a
sequence's funnel as bars per step and an experiment's arms as bars of their rates.

Plain SVG text as the warming plot draws it: no plotting library, no script, every
text escaped (and stripped of the control characters XML forbids), a ``<title>``
on each cell or bar as its tooltip, and the same bytes for the same figures.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.xml_text import xml_text

CELL, LABEL_WIDTH, SIZE_WIDTH, TOP = 22, 86, 70, 64
BAR_WIDTH, BAR_GAP, BAR_AREA, LEFT = 56, 24, 240, 72
FUNNEL_SERIES = (("entered", "#1a73e8"), ("passed", "#34a853"), ("exited", "#e8710a"), ("waiting", "#80868b"))



def _open(width: int, height: int, title: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
            f"<title>{xml_text(title)}</title>", f'<rect width="{width}" height="{height}" fill="#fff"/>',
            f'<text x="12" y="22" font-size="15" font-weight="bold">{xml_text(title)}</text>']


def _shade(share: float) -> str:
    """White (0) to deep blue (1)."""
    share = min(max(share, 0.0), 1.0)
    red, green = round(255 - share * (255 - 26)), round(255 - share * (255 - 115))
    return f"#{red:02x}{green:02x}{round(255 - share * (255 - 232)):02x}"


def cohort_heatmap(answer: dict[str, Any], title: str = "Engagement by signup week") -> str:
    """One row per cohort (signup week, subscribers), one cell per later week,
    shaded by the share of the cohort that engaged that week."""
    cohorts = answer["cohorts"]
    weeks = max((len(c["shares"]) for c in cohorts), default=0)
    left = LABEL_WIDTH + SIZE_WIDTH
    width, height = max(left + weeks * CELL + 24, 420), TOP + len(cohorts) * CELL + 40
    parts = _open(width, height, title)
    parts.append(f'<text x="12" y="{TOP - 24}">Share of each cohort that opened or clicked, by week after signup '
                 f'(week 0: the signup week)</text>')
    parts.append(f'<text x="12" y="{TOP - 6}" font-weight="bold">cohort</text>'
                 f'<text x="{left - 8}" y="{TOP - 6}" text-anchor="end" font-weight="bold">subscribers</text>')
    for week in range(weeks):
        parts.append(f'<text x="{left + week * CELL + CELL / 2:.1f}" y="{TOP - 6}" text-anchor="middle">{week}</text>')
    for row, cohort in enumerate(cohorts):
        y = TOP + row * CELL
        parts.append(f'<g class="cohort" data-cohort="{xml_text(cohort["cohort"])}">'
                     f'<text x="12" y="{y + 15}">{xml_text(cohort["cohort"])}</text>'
                     f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{int(cohort["subscribers"]):,}</text>')
        for week, (share, engaged) in enumerate(zip(cohort["shares"], cohort["engaged"])):
            x = left + week * CELL
            parts.append(f'<rect x="{x}" y="{y}" width="{CELL - 1}" height="{CELL - 1}" fill="{_shade(share)}">'
                         f'<title>{xml_text(cohort["cohort"])}, week {week}: {share * 100:.1f}% '
                         f'({int(engaged):,} of {int(cohort["subscribers"]):,})</title></rect>')
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def funnel_bars(steps: Sequence[dict[str, Any]], title: str = "Funnel") -> str:
    """Per step a group of bars (entered, passed, exited, waiting) on one scale."""
    top_value = max((int(s.get(name) or 0) for s in steps for name, _ in FUNNEL_SERIES), default=0) or 1
    group = len(FUNNEL_SERIES) * (BAR_WIDTH // len(FUNNEL_SERIES)) + BAR_GAP
    width = max(LEFT + len(steps) * group + 24, 480)
    bottom = TOP + BAR_AREA
    parts = _open(width, bottom + 56, title)
    for offset, (name, color) in enumerate(FUNNEL_SERIES):
        parts.append(f'<rect x="{LEFT + offset * 90}" y="{TOP - 26}" width="12" height="8" fill="{color}"/>'
                     f'<text x="{LEFT + offset * 90 + 16}" y="{TOP - 18}">{name}</text>')
    parts.append(f'<line x1="{LEFT}" x2="{width - 12}" y1="{bottom}" y2="{bottom}" stroke="#444"/>'
                 f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{top_value:,}</text>'
                 f'<text x="{LEFT - 6}" y="{bottom + 4}" text-anchor="end">0</text>')
    bar = BAR_WIDTH // len(FUNNEL_SERIES)
    for index, step in enumerate(steps):
        x0 = LEFT + 8 + index * group
        parts.append(f'<g class="step" data-step="{int(step["step"])}">')
        for offset, (name, color) in enumerate(FUNNEL_SERIES):
            value = int(step.get(name) or 0)
            height = value / top_value * BAR_AREA
            parts.append(f'<rect x="{x0 + offset * bar}" y="{bottom - height:.1f}" width="{bar - 1}" '
                         f'height="{height:.1f}" fill="{color}"><title>Step {int(step["step"])} '
                         f'({xml_text(step.get("type", ""))}): {value:,} {name}</title></rect>')
        parts.append(f'<text x="{x0 + BAR_WIDTH / 2:.1f}" y="{bottom + 14}" text-anchor="middle">'
                     f'{int(step["step"])}</text><text x="{x0 + BAR_WIDTH / 2:.1f}" y="{bottom + 28}" '
                     f'text-anchor="middle" fill="#555">{xml_text(step.get("type", ""))}</text></g>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


EXPERIMENT_ROW, EXPERIMENT_LABEL, EXPERIMENT_AREA = 30, 110, 300


def experiment_bars(experiment: dict[str, Any], title: str | None = None) -> str:
    """One horizontal bar per arm: its rate of the experiment's metric, the winner
    in green, and for each challenger a whisker over the rates its always-valid
    interval allows (the control's rate plus the interval of the difference), so
    a whisker that crosses the control's rate is a difference not yet shown."""
    arms = [v for v in experiment["variants"] if v.get("rate") is not None]
    control = float(arms[0]["rate"]) if arms else 0.0
    ends = [float(v["rate"]) for v in arms] + [control + float(end) for v in arms
                                               for end in (v.get("confidence_interval") or ())]
    top_value = max([*ends, 0.0]) or 1.0
    width = EXPERIMENT_LABEL + EXPERIMENT_AREA + 110
    height = TOP + len(arms) * EXPERIMENT_ROW + 24
    parts = _open(width, height, title or f"Step {int(experiment['step'])}: {experiment['metric']} rate by variant")
    parts.append(f'<text x="12" y="{TOP - 20}">{xml_text(experiment["status"])}'
                 f'{": winner " + xml_text(experiment["winner"]) if experiment.get("winner") else ""}</text>')
    for row, arm in enumerate(arms):
        y = TOP + row * EXPERIMENT_ROW
        rate = float(arm["rate"])
        length = rate / top_value * EXPERIMENT_AREA
        color = "#34a853" if arm["name"] == experiment.get("winner") else "#1a73e8"
        parts.append(f'<g class="arm" data-arm="{xml_text(arm["name"])}">'
                     f'<text x="12" y="{y + 15}">{xml_text(arm["name"])}</text>'
                     f'<rect x="{EXPERIMENT_LABEL}" y="{y + 4}" width="{length:.1f}" height="16" fill="{color}">'
                     f'<title>{xml_text(arm["name"])}: {rate * 100:.1f}% of {int(arm.get("sent") or 0):,}</title></rect>')
        interval = arm.get("confidence_interval")
        if interval:
            low, high = (max(0.0, control + float(end)) / top_value * EXPERIMENT_AREA + EXPERIMENT_LABEL
                         for end in interval)
            parts.append(f'<line x1="{low:.1f}" x2="{high:.1f}" y1="{y + 12}" y2="{y + 12}" stroke="#222"/>')
        parts.append(f'<text x="{EXPERIMENT_LABEL + EXPERIMENT_AREA + 8}" y="{y + 15}">{rate * 100:.1f}%</text></g>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
