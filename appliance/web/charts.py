"""Small line charts as inline SVG, drawn on the box (no script, no CDN): the landing page's
images per minute, queue depth and disk use. Pure string building; every text is escaped.

A series is a list of values, one per minute (None: no sample). Long series are binned to at
most `width / 2` points (the mean of each bin), so a 24 h plot stays a few kilobytes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from html import escape

log = logging.getLogger(__name__)

COLOURS = ("#0b5cad", "#1e7d32", "#b3261e", "#8a5a00", "#6a3d9a")


def _binned(values: Sequence[float | None], bins: int) -> list[float | None]:
    if len(values) <= bins:
        return list(values)
    out: list[float | None] = []
    for i in range(bins):
        chunk = [v for v in values[i * len(values) // bins:(i + 1) * len(values) // bins]
                 if v is not None]
        out.append(sum(chunk) / len(chunk) if chunk else None)
    return out


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def line_chart(title: str, series: dict[str, Sequence[float | None]], *, span: str = "24 h",
               unit: str = "", width: int = 360, height: int = 90,
               y_max: float | None = None) -> str:
    """An <svg> with one polyline per named series, a y-axis top label and the time span.
    `data-points` holds how many points were drawn (0: nothing to draw)."""
    top, bottom, left = 12, 14, 4
    plot_h = height - top - bottom
    binned = {name: _binned(values, max(1, width // 2)) for name, values in series.items()}
    present = [v for values in binned.values() for v in values if v is not None]
    peak = y_max if y_max is not None else max(present, default=0.0)
    peak = peak if peak > 0 else 1.0
    lines, drawn = [], 0
    for index, (name, values) in enumerate(binned.items()):
        if not values:
            continue
        step = (width - left) / max(1, len(values) - 1)
        points = [f"{left + i * step:.1f},{top + plot_h - (v / peak) * plot_h:.1f}"
                  for i, v in enumerate(values) if v is not None]
        drawn += len(points)
        if points:
            colour = COLOURS[index % len(COLOURS)]
            lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                         f'points="{" ".join(points)}"><title>{escape(name)}</title></polyline>')
    legend = " · ".join(
        f'<tspan fill="{COLOURS[i % len(COLOURS)]}">{escape(name)}</tspan>'
        for i, name in enumerate(binned)) if len(binned) > 1 else ""
    label = f"{title}: up to {_number(peak)}{unit}" if present else f"{title}: no data yet"
    return (
        f'<svg class="chart" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} '
        f'{height}" width="100%" data-points="{drawn}" xmlns="http://www.w3.org/2000/svg">'
        f'<title>{escape(label)}</title>'
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width}" y2="{top + plot_h}" '
        f'stroke="#d5dde5"/>'
        f'<text x="{left}" y="9" font-size="9" fill="#5d6b78">{escape(_number(peak))}'
        f'{escape(unit)}</text>'
        f'<text x="{width - 2}" y="9" font-size="9" text-anchor="end">{legend}</text>'
        + "".join(lines) +
        f'<text x="{left}" y="{height - 2}" font-size="9" fill="#5d6b78">{escape(span)} ago'
        f'</text><text x="{width - 2}" y="{height - 2}" font-size="9" fill="#5d6b78" '
        f'text-anchor="end">now</text></svg>')


def landing_plots(series: dict) -> dict[str, str]:
    """The landing page's three plots from `StatsStore.series` (GET /api/v1/stats' shape)."""
    forwarded = series["forwarded"]
    total = [sum(v) for v in zip(*forwarded.values(), strict=True)] if forwarded \
        else [0] * series["minutes"]
    span = f"{series['minutes'] // 60} h" if series["minutes"] >= 120 \
        else f"{series['minutes']} min"
    return {
        "images": line_chart("images per minute", {"received": series["received"],
                                                   "forwarded": total}, span=span),
        "queue": line_chart("queue depth", series["queue_depth"] or {"no destinations": []},
                            span=span),
        "disk": line_chart("disk use", {"used": series["disk_used_percent"]}, span=span,
                           unit="%", y_max=100.0),
    }


def disk_bar(used_percent: float, high_water_percent: float, reserve_percent: float,
             width: int = 360, height: int = 26) -> str:
    """The data disk as a bar: the used part, a mark where early deletion of forwarded copies
    starts (high water) and one where C-STORE is refused (the reserve)."""
    def x(percent: float) -> float:
        return max(0.0, min(100.0, percent)) / 100 * width
    colour = "#b3261e" if used_percent >= 100 - reserve_percent else (
        "#8a5a00" if used_percent >= high_water_percent else "#1e7d32")
    label = (f"disk {used_percent:.1f}% used; forwarded copies deleted early above "
             f"{high_water_percent:g}%; C-STORE refused above {100 - reserve_percent:.1f}%")
    marks = "".join(
        f'<line x1="{x(p):.1f}" y1="0" x2="{x(p):.1f}" y2="{height}" stroke="{c}" '
        f'stroke-width="2"><title>{escape(t)}</title></line>'
        for p, c, t in ((high_water_percent, "#8a5a00", f"high water {high_water_percent:g}%"),
                        (100 - reserve_percent, "#b3261e", "reserve: C-STORE refused beyond")))
    return (f'<svg class="bar" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} '
            f'{height}" width="100%" xmlns="http://www.w3.org/2000/svg">'
            f'<title>{escape(label)}</title>'
            f'<rect x="0" y="4" width="{width}" height="{height - 8}" fill="#eef1f4"/>'
            f'<rect x="0" y="4" width="{x(used_percent):.1f}" height="{height - 8}" '
            f'fill="{colour}"/>{marks}</svg>')
