"""Histograms as inline SVG for the report page: plain markup, so the page needs no script, no
chart library from the network and prints as drawn. A dozen lines of geometry is simpler than a
plotting dependency whose output would still have to be inlined."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 560, 200, 44, 34, 34
BINS = 20


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int


def bins(values: list[float], marker: float | None = None, count: int = BINS) -> list[Bin]:
    """`count` equal bins from 0 to the largest value (or just past `marker`, so it shows)."""
    top = max([*values, marker * 1.05 if marker else 0, 1e-9])
    width = top / count
    counts = [0] * count
    for value in values:
        counts[min(count - 1, int(value / width))] += 1
    return [Bin(i * width, (i + 1) * width, c) for i, c in enumerate(counts)]


def _tick(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def histogram_svg(
    values: list[float], title: str, unit: str, marker: float | None = None, marker_label: str = ""
) -> Markup:
    """A bar chart of `values`; bars past `marker` (CUTOFF_LEN) red, the marker a dashed line."""
    found = bins(values, marker)
    top = found[-1].high
    peak = max(b.count for b in found) or 1
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    x = lambda v: LEFT + v / top * plot_w  # noqa: E731
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 '
        f'{WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}"><title>{escape(title)}</title>',
        f'<text class="caption" x="{LEFT}" y="14">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
        'stroke="#444"/>',
    ]
    for item in found:
        if not item.count:
            continue
        bar_h = max(1.0, item.count / peak * plot_h)
        over = marker is not None and item.low >= marker
        parts.append(
            f'<rect x="{x(item.low) + 0.5:.1f}" y="{TOP + plot_h - bar_h:.1f}" '
            f'width="{max(1.0, x(item.high) - x(item.low) - 1):.1f}" height="{bar_h:.1f}" '
            f'fill="{"#c0392b" if over else "#2e6da4"}"><title>{_tick(item.low)}-'
            f"{_tick(item.high)} {escape(unit)}: {item.count}</title></rect>"
        )
    for i in range(5):
        value = top * i / 4
        parts.append(
            f'<text x="{x(value):.1f}" y="{HEIGHT - BOTTOM + 14}" '
            f'text-anchor="{"end" if i == 4 else "middle"}">'
            f"{_tick(value)}</text>"
        )
    parts.append(
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 4}" text-anchor="middle">'
        f"{escape(unit)}</text>"
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{peak}</text>'
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>'
    )
    if marker is not None:
        parts.append(
            f'<line class="marker" x1="{x(marker):.1f}" y1="{TOP - 4}" x2="{x(marker):.1f}" '
            f'y2="{TOP + plot_h}" stroke="#c0392b" stroke-dasharray="4 3" stroke-width="1.5"/>'
            f'<text x="{x(marker) - 4:.1f}" y="{TOP - 8}" text-anchor="end" fill="#c0392b">'
            f"{escape(marker_label)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
