"""A plan's progress as one SVG the API can serve as ``image/svg+xml``: planned vs
actual daily volume on top, then the bounce and the complaint rate each in its own
panel, since a 0.1% complaint rate drawn on a bounce scale would be a flat line.

Plain SVG text, no plotting library: the web image stays small, and the output is
the same bytes for the same figures, so it can be cached by ETag. Every point is a
circle with a ``<title>``, which browsers show as a tooltip.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.xml_text import xml_text
from warming.health import Thresholds, percent

WIDTH, LEFT, RIGHT, TOP = 760, 72, 24, 48
VOLUME_HEIGHT, RATE_HEIGHT, GAP = 220, 110, 56
COLORS = {"planned": "#80868b", "actual": "#1a73e8", "bounce": "#e8710a", "complaint": "#d93025"}


@dataclass(frozen=True)
class DayFigures:
    """One day of a plan: the schedule's volume, and what happened (None for days not yet sent)."""

    day: int
    planned: int
    actual: int | None = None
    bounce_rate: float | None = None
    complaint_rate: float | None = None


@dataclass(frozen=True)
class _Panel:
    label: str
    top: int
    height: int
    top_value: float
    tick_label: Callable[[float], str]
    value_label: Callable[[float], str]
    series: list[tuple[str, str, Callable[[DayFigures], float | None]]]  # name, line style, value
    lines: list[tuple[str, tuple[str, float]]] = field(default_factory=list)  # series name, (label, level)

    def y_of(self, value: float) -> float:
        return self.top + self.height - value / self.top_value * self.height


def render_svg(days: Sequence[DayFigures], title: str = "Warming plan", thresholds: Thresholds | None = None) -> str:
    """The SVG document; with ``thresholds``, the hold and step-back levels are drawn as dashed lines."""
    days = sorted(days, key=lambda d: d.day)
    first = days[0].day if days else 1
    span = max(1, days[-1].day - first) if days else 1

    def x_of(day: int) -> float:
        return LEFT + (day - first) / span * (WIDTH - LEFT - RIGHT)

    volumes = [v for d in days for v in (d.planned, d.actual) if v is not None]
    bounce_top = TOP + VOLUME_HEIGHT + GAP
    complaint_top = bounce_top + RATE_HEIGHT + GAP
    panels = [
        _Panel("Daily volume", TOP, VOLUME_HEIGHT, _nice(max(volumes, default=0)), "{:,.0f}".format,
               "{:,.0f}".format, [("planned", "dash", lambda d: d.planned), ("actual", "solid", lambda d: d.actual)]),
        _rate_panel("Bounce rate", "bounce", bounce_top, days, thresholds),
        _rate_panel("Complaint rate", "complaint", complaint_top, days, thresholds),
    ]
    height = complaint_top + RATE_HEIGHT + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
        f"<title>{xml_text(title)}</title>",
        f'<rect width="{WIDTH}" height="{height}" fill="#fff"/>',
        f'<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{xml_text(title)}</text>',
    ]
    for panel in panels:
        parts.append(f'<text x="{LEFT}" y="{panel.top - 10}" font-weight="bold">{xml_text(panel.label)}</text>')
        parts.extend(_axes(panel, days, x_of))
        for name, level in panel.lines:
            y = panel.y_of(level[1])
            parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                         f'stroke="{COLORS[name]}" stroke-dasharray="2 3" opacity="0.7"/>'
                         f'<text x="{WIDTH - RIGHT - 4}" y="{y - 3:.1f}" text-anchor="end" fill="{COLORS[name]}">'
                         f"{xml_text(level[0])} {xml_text(percent(level[1]))}</text>")
        for name, style, value_of in panel.series:
            parts.extend(_series(panel, name, style, value_of, days, x_of))
        parts.append(_legend(panel.top, [name for name, _, _ in panel.series]))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _rate_panel(label: str, kind: str, top: int, days: Sequence[DayFigures], thresholds: Thresholds | None) -> _Panel:
    def value_of(d: DayFigures) -> float | None:
        return d.bounce_rate if kind == "bounce" else d.complaint_rate

    lines = []
    if thresholds is not None:
        levels = getattr(thresholds, kind)
        lines = [(kind, ("hold", levels.hold)), (kind, ("step back", levels.step_back))]
    seen = [v for d in days if (v := value_of(d)) is not None] + [level for _, (_, level) in lines]
    # with no rate above 0 yet, a 1% scale rather than 100% keeps the empty panel readable
    return _Panel(label, top, RATE_HEIGHT, _nice(max(seen, default=0) or 0.01), lambda v: f"{v * 100:.3g}%", percent,
                  [(kind, "solid", value_of)], lines)


def _axes(panel: _Panel, days: Sequence[DayFigures], x_of: Callable[[int], float]) -> list[str]:
    bottom = panel.top + panel.height
    out = [f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{bottom}" y2="{bottom}" stroke="#444"/>',
           f'<line x1="{LEFT}" x2="{LEFT}" y1="{panel.top}" y2="{bottom}" stroke="#444"/>']
    for step in range(1, 5):
        value = panel.top_value * step / 4
        y = panel.y_of(value)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e0e0e0"/>')
    for step in range(5):
        value = panel.top_value * step / 4
        out.append(f'<text x="{LEFT - 6}" y="{panel.y_of(value) + 4:.1f}" text-anchor="end">'
                   f"{xml_text(panel.tick_label(value))}</text>")
    every, last = max(1, math.ceil(len(days) / 15)), len(days) - 1
    for index, d in enumerate(days):
        if index == last or (index % every == 0 and last - index >= every):  # no label crowding the last
            out.append(f'<text x="{x_of(d.day):.1f}" y="{bottom + 14}" text-anchor="middle">{d.day}</text>')
    return out


def _series(panel: _Panel, name: str, style: str, value_of: Callable[[DayFigures], float | None],
            days: Sequence[DayFigures], x_of: Callable[[int], float]) -> list[str]:
    """A line through the days that have a value (broken where one is missing) and a circle per point."""
    color = COLORS[name]
    commands, circles, previous_missing = [], [], True
    for d in days:
        value = value_of(d)
        if value is None:
            previous_missing = True
            continue
        x, y = x_of(d.day), panel.y_of(value)
        commands.append(f"{'M' if previous_missing else 'L'}{x:.1f},{y:.1f}")
        circles.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}">'
                       f"<title>Day {d.day}: {xml_text(panel.value_label(value))} {name}</title></circle>")
        previous_missing = False
    dash = ' stroke-dasharray="6 4"' if style == "dash" else ""
    path = [f'<path d="{" ".join(commands)}" fill="none" stroke="{color}" stroke-width="2"{dash}/>'] if commands else []
    return [f'<g class="series" data-series="{name}">', *path, *circles, "</g>"]


def _legend(top: int, names: list[str]) -> str:
    x = WIDTH - RIGHT - 110 * len(names)
    items = []
    for offset, name in enumerate(names):
        left = x + offset * 110
        items.append(f'<rect x="{left}" y="{top - 20}" width="12" height="4" fill="{COLORS[name]}"/>'
                     f'<text x="{left + 16}" y="{top - 15}">{name}</text>')
    return "".join(items)


def _nice(value: float) -> float:
    """The axis top: the smallest 1, 2, 3, 4, 5, 6 or 8 times a power of ten at or above
    ``value``, so its quarters (the grid lines) are round numbers too."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(power * m for m in (1, 2, 3, 4, 5, 6, 8, 10) if power * m >= value * (1 - 1e-9))

