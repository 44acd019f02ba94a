"""Charts drawn on the server as SVG (no script, no third-party library): a line per series
over days, with a title and a description for assistive technology; the page shows the same
numbers in a table beside it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 640
HEIGHT = 200
_PAD_LEFT = 48
_PAD_RIGHT = 12
_PAD_Y = 16
# Distinct in hue and in dash pattern, each at least 4.5:1 against white (WCAG 1.4.11).
_STYLES = (("#0b5cad", ""), ("#a4161a", "6 4"), ("#1d6b35", "2 3"), ("#6a3d9a", "10 3 2 3"))


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    values: Sequence[int]


def lines(key: str, title: str, days: Sequence[str], series: Sequence[Line]) -> str:
    """An SVG line chart of `series` over `days` (one value per day each); `key` makes its
    element ids unique in the page."""
    top = max([1, *(v for line in series for v in line.values)])
    plot_w = WIDTH - _PAD_LEFT - _PAD_RIGHT
    plot_h = HEIGHT - 2 * _PAD_Y
    step = plot_w / max(1, len(days) - 1)

    def y(value: int) -> float:
        return _PAD_Y + plot_h * (1 - value / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{key}-t {key}-d" class="chart">',
        f'<title id="{key}-t">{escape(title)}</title>',
        f'<desc id="{key}-d">{escape(_describe(days, series))}</desc>',
        f'<line x1="{_PAD_LEFT}" y1="{y(0):.1f}" x2="{WIDTH - _PAD_RIGHT}" '
        f'y2="{y(0):.1f}" stroke="#4a5360"/>',
        f'<text x="{_PAD_LEFT - 6}" y="{y(top) + 4:.1f}" text-anchor="end" '
        f'font-size="12" fill="#1b1f24">{top}</text>',
        f'<text x="{_PAD_LEFT - 6}" y="{y(0) + 4:.1f}" text-anchor="end" '
        f'font-size="12" fill="#1b1f24">0</text>',
    ]
    for n, line in enumerate(series):
        colour, dash = _STYLES[n % len(_STYLES)]
        points = " ".join(
            f"{_PAD_LEFT + i * step:.1f},{y(v):.1f}" for i, v in enumerate(line.values)
        )
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dashed} points="{points}"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def legend(series: Sequence[Line]) -> list[tuple[str, str, str]]:
    """(label, colour, dash) per series, for the legend the page draws beside the chart."""
    return [(line.label, *_STYLES[n % len(_STYLES)]) for n, line in enumerate(series)]


def _describe(days: Sequence[str], series: Sequence[Line]) -> str:
    if not days:
        return "No days to show."
    totals = ", ".join(f"{line.label}: {sum(line.values)}" for line in series)
    return f"From {days[0]} to {days[-1]}. Totals: {totals}."
