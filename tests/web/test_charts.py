"""Server-drawn charts: one polyline per series, scaled to the largest value, described for
assistive technology, ids unique per chart."""

from __future__ import annotations

import re

from consentry.web.charts import Line, legend, lines


def test_a_line_per_series_scaled_to_the_top() -> None:
    svg = lines(
        "c",
        "Changes",
        ["2026-12-01", "2026-12-02", "2026-12-03"],
        [Line("A", [0, 5, 10]), Line("B", [10, 0, 0])],
    )
    points = re.findall(r'points="([^"]+)"', svg)
    assert len(points) == 2
    ys = [[float(p.split(",")[1]) for p in pts.split()] for pts in points]
    # The top value sits at the top of the plot, zero on the axis.
    assert ys[0][2] == ys[1][0] < ys[0][1] < ys[0][0] == ys[1][1]
    assert 'aria-labelledby="c-t c-d"' in svg
    assert "From 2026-12-01 to 2026-12-03. Totals: A: 15, B: 10." in svg


def test_titles_are_escaped_and_ids_differ_between_charts() -> None:
    one = lines("one", "<b>x</b>", ["d"], [Line("A", [1])])
    two = lines("two", "y", ["d"], [Line("A", [1])])
    assert "<b>" not in one
    assert "&lt;b&gt;" in one
    assert set(re.findall(r'id="([^"]+)"', one)).isdisjoint(re.findall(r'id="([^"]+)"', two))


def test_series_differ_in_colour_and_dash() -> None:
    styles = legend([Line("A", [1]), Line("B", [1]), Line("C", [1])])
    assert len({colour for _, colour, _ in styles}) == 3
    assert len({dash for _, _, dash in styles}) == 3
