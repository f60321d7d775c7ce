"""The planned vs actual volume and rates plot: valid SVG, one point per day per series, escaped text."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from warming.health import Thresholds
from warming.plot import DayFigures, render_svg
from warming.schedule import daily_volumes

SVG = "{http://www.w3.org/2000/svg}"
VOLUMES = daily_volumes()


def figures(sent_days: int) -> list[DayFigures]:
    """The default plan with ``sent_days`` days behind it, actual volume a little under plan."""
    return [DayFigures(day=i + 1, planned=planned,
                       actual=planned - 2 if i < sent_days else None,
                       bounce_rate=0.01 * (i % 4) if i < sent_days else None,
                       complaint_rate=0.0004 if i < sent_days else None)
            for i, planned in enumerate(VOLUMES)]


def series(svg: str, name: str) -> ET.Element:
    root = ET.fromstring(svg)
    found = [g for g in root.iter(f"{SVG}g") if g.get("data-series") == name]
    assert len(found) == 1
    return found[0]


def points(group: ET.Element) -> list[tuple[float, float]]:
    return [(float(c.get("cx")), float(c.get("cy"))) for c in group.iter(f"{SVG}circle")]


def test_it_renders_a_well_formed_svg_document():
    root = ET.fromstring(render_svg(figures(30)))
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title").text == "Warming plan"


def test_it_draws_one_point_per_day_for_each_series():
    svg = render_svg(figures(30))
    for name in ("planned", "actual", "bounce", "complaint"):
        group = series(svg, name)
        assert len(points(group)) == 30, name
        assert len(re.findall(r"[ML]", group.find(f"{SVG}path").get("d"))) == 30, name


def test_it_draws_actual_figures_only_for_the_days_already_sent():
    svg = render_svg(figures(12))
    assert len(points(series(svg, "planned"))) == 30
    for name in ("actual", "bounce", "complaint"):
        assert len(points(series(svg, name))) == 12, name


def test_it_places_days_left_to_right_and_larger_volumes_higher():
    planned = points(series(render_svg(figures(30)), "planned"))
    xs, ys = [x for x, _ in planned], [y for _, y in planned]
    assert xs == sorted(xs) and len(set(xs)) == 30
    assert ys[-1] < ys[0]  # SVG's y grows downward


def test_it_keeps_the_actual_line_below_the_planned_one_when_less_was_sent():
    svg = render_svg(figures(30))
    planned, actual = points(series(svg, "planned")), points(series(svg, "actual"))
    assert all(a[1] >= p[1] for p, a in zip(planned, actual))


def test_it_breaks_the_line_where_a_day_has_no_figures():
    days = figures(10)
    days[4] = DayFigures(day=5, planned=VOLUMES[4])
    path = series(render_svg(days), "actual").find(f"{SVG}path").get("d")
    assert path.count("M") == 2 and path.count("L") == 7


def test_it_sorts_days_given_out_of_order():
    shuffled = list(reversed(figures(30)))
    assert render_svg(shuffled) == render_svg(figures(30))


def test_it_labels_each_point_with_its_day_and_value():
    circle = next(series(render_svg(figures(30)), "actual").iter(f"{SVG}circle"))
    assert circle.find(f"{SVG}title").text == "Day 1: 48 actual"


def test_it_escapes_the_title_and_drops_characters_xml_cannot_hold():
    svg = render_svg(figures(3), title='Alice & Bob\'s <plan> "B"\x00\x1b')
    root = ET.fromstring(svg)
    assert root.find(f"{SVG}title").text == 'Alice & Bob\'s <plan> "B"'


def test_it_draws_the_hold_and_step_back_levels_when_given_thresholds():
    svg = render_svg(figures(30), thresholds=Thresholds())
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert "hold 5.0%" in texts and "step back 10.0%" in texts
    assert "hold 0.10%" in texts and "step back 0.30%" in texts


def test_it_renders_a_plan_with_no_days_yet():
    root = ET.fromstring(render_svg([]))
    assert list(root.iter(f"{SVG}circle")) == []


def test_it_renders_a_single_day():
    svg = render_svg([DayFigures(day=1, planned=50, actual=50, bounce_rate=0.0, complaint_rate=0.0)])
    assert len(points(series(svg, "actual"))) == 1
