"""charts.py: pure SVG from plain data (well-formed, one cell a day, colours, bar and line geometry)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from service.web import charts

NS = {"svg": "http://www.w3.org/2000/svg"}
MONDAY = date(2026, 9, 7)


def _days(n: int = 84, counts=None):
    counts = counts or {}
    return [(MONDAY + timedelta(days=i), counts.get(i, {})) for i in range(n)]


def _cells(svg: str):
    root = ET.fromstring(svg)
    return root, root.findall("svg:rect", NS)


def test_heatmap_is_well_formed_with_one_cell_a_day():
    root, cells = _cells(charts.heatmap_svg(_days(), today=MONDAY + timedelta(days=83)))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("role") == "img"
    assert root.find("svg:title", NS).text == "Check-in history, last 12 weeks"
    assert len(cells) == 84
    assert len({(c.get("x"), c.get("y")) for c in cells}) == 84


def test_heatmap_colours_each_day_by_its_outcome_and_titles_it():
    counts = {
        0: {"confirmed": 2},
        1: {"confirmed": 1, "missed": 1},
        2: {"declined": 1, "confirmed": 1},
        3: {"skipped": 1},
        4: {"excused": 1},
        5: {},
        6: {"cancelled": 1},
    }
    _, cells = _cells(charts.heatmap_svg(_days(counts=counts), today=MONDAY + timedelta(days=83)))
    fills = [c.get("fill") for c in cells[:7]]
    C = charts.COLOURS
    assert fills == [C["confirmed"], C["missed"], C["declined"], C["skipped"], C["excused"],
                     C["none"], C["none"]]  # fmt: skip
    titles = [c.find("svg:title", NS).text for c in cells[:2]]
    assert titles[0] == "2026-09-07 (Mon): 2 confirmed"
    assert titles[1] == "2026-09-08 (Tue): 1 missed, 1 confirmed"


def test_heatmap_rows_are_weekdays_and_future_days_are_marked():
    today = MONDAY + timedelta(days=80)
    _, cells = _cells(charts.heatmap_svg(_days(), today=today))
    assert cells[0].get("y") != cells[1].get("y") and cells[0].get("y") == cells[7].get("y")
    future = [c for c in cells if "cell-future" in c.get("class")]
    assert len(future) == 3
    assert all("upcoming" in c.find("svg:title", NS).text for c in future)


def test_heatmap_escapes_text():
    svg = charts.heatmap_svg([(MONDAY, {"<script>": 1})], today=MONDAY)
    ET.fromstring(svg)
    assert "<script>" not in svg


@pytest.mark.parametrize(
    ("counts", "expected"),
    [({}, "none"), ({"confirmed": 1, "missed": 1}, "missed"), ({"excused": 1, "skipped": 2}, "excused"),
     ({"scheduled": 1}, "none"), ({"declined": 1, "confirmed": 3}, "declined")],
)  # fmt: skip
def test_day_outcome_priority(counts, expected):
    assert charts.day_outcome(counts) == expected


def _bars(svg: str):
    root = ET.fromstring(svg)
    bars = [r for r in root.findall("svg:rect", NS) if r.get("class") == "bar"]
    lines = {line.get("class"): line for line in root.findall("svg:line", NS)}
    return root, bars, lines


def test_meeting_bars_are_proportional_and_sit_on_the_baseline():
    weeks = [(MONDAY + timedelta(weeks=i), n) for i, n in enumerate([0, 1, 2, 4])]
    _, bars, lines = _bars(charts.meetings_chart_svg(weeks, target=None, height=220))
    heights = [float(b.get("height")) for b in bars]
    assert heights[0] == 0
    assert heights[2] == pytest.approx(2 * heights[1])
    assert heights[3] == pytest.approx(4 * heights[1])
    base = float(lines["baseline"].get("y1"))
    for bar in bars:
        assert float(bar.get("y")) + float(bar.get("height")) == pytest.approx(base)
    assert "target" not in lines
    assert [b.get("data-count") for b in bars] == ["0", "1", "2", "4"]


def test_target_line_sits_at_the_target_height():
    weeks = [(MONDAY + timedelta(weeks=i), n) for i, n in enumerate([3, 1, 2, 3])]
    _, bars, lines = _bars(charts.meetings_chart_svg(weeks, target=2))
    target_y = float(lines["target"].get("y1"))
    base = float(lines["baseline"].get("y1"))
    two = bars[2]  # a bar of exactly the target reaches the line
    assert float(two.get("y")) == pytest.approx(target_y)
    three = bars[0]
    assert (base - target_y) / float(three.get("height")) == pytest.approx(2 / 3)
    assert two.get("fill") != bars[1].get("fill")  # met vs not met


def test_twelve_weeks_make_twelve_bars_with_titles():
    weeks = [(MONDAY + timedelta(weeks=i), i % 4) for i in range(12)]
    root, bars, _ = _bars(charts.meetings_chart_svg(weeks, target=3))
    assert len(bars) == 12
    assert bars[5].find("svg:title", NS).text == "Week of 2026-10-12: 1 meeting (target 3)"
    assert "met in 3 of them" in root.find("svg:desc", NS).text


def test_ratio_bar():
    root = ET.fromstring(charts.ratio_bar_svg(0.5, width=64))
    fill = [r for r in root.findall("svg:rect", NS) if r.get("class") == "fill"][0]
    assert float(fill.get("width")) == 32
    empty = ET.fromstring(charts.ratio_bar_svg(None))
    assert float(empty.findall("svg:rect", NS)[1].get("width")) == 0
