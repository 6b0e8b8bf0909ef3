"""Small inline-SVG charts; every label is escaped, and no script or external resource is involved."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = {"default": "#3566c4", "warn": "#d9822b", "danger": "#c23b3b", "ok": "#2f8f5b", "muted": "#9aa5b5"}


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    limit: float | None = None  # e.g. an agent's capacity, drawn as a marker
    tone: str = "default"
    caption: str | None = None  # the number shown at the end of the bar


def hbars(bars: Sequence[Bar], *, title: str, width: int = 520, row: int = 26, label_width: int = 170) -> Markup:
    """Horizontal bars with an optional limit marker per row."""
    if not bars:
        return Markup("")
    top = max([b.value for b in bars] + [b.limit or 0 for b in bars] + [1])
    plot = width - label_width - 60
    height = row * len(bars) + 8
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
             f'preserveAspectRatio="xMinYMin meet" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for i, bar in enumerate(bars):
        y = 4 + i * row
        w = max(0.0, plot * bar.value / top)
        color = PALETTE.get(bar.tone, PALETTE["default"])
        label = bar.label if len(bar.label) <= 26 else bar.label[:25] + "…"
        parts.append(f'<text x="{label_width - 8}" y="{y + row * 0.62:.1f}" text-anchor="end" '
                     f'class="chart-label">{escape(label)}</text>')
        parts.append(f'<rect x="{label_width}" y="{y + 3}" width="{plot}" height="{row - 8}" class="chart-track"/>')
        parts.append(f'<rect x="{label_width}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{color}" rx="2"/>')
        if bar.limit is not None:
            lx = label_width + plot * bar.limit / top
            parts.append(f'<line x1="{lx:.1f}" x2="{lx:.1f}" y1="{y}" y2="{y + row - 2}" class="chart-limit"/>')
        caption = bar.caption if bar.caption is not None else f"{bar.value:g}"
        parts.append(f'<text x="{label_width + plot + 6}" y="{y + row * 0.62:.1f}" '
                     f'class="chart-value">{escape(caption)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every interpolated label is escaped above)


def columns(points: Sequence[tuple[str, float]], *, title: str, width: int = 560, height: int = 170) -> Markup:
    """Vertical columns, e.g. tickets per day; labels under every other column when crowded."""
    if not points:
        return Markup("")
    top = max([v for _, v in points] + [1])
    base = height - 24
    step = (width - 20) / len(points)
    bar_w = max(4.0, step * 0.7)
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
             f'preserveAspectRatio="xMinYMin meet" aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<line x1="10" x2="{width - 10}" y1="{base}" y2="{base}" class="chart-axis"/>']
    label_every = 1 if len(points) <= 10 else 2
    for i, (label, value) in enumerate(points):
        h = (base - 18) * value / top
        x = 10 + i * step + (step - bar_w) / 2
        parts.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                     f'fill="{PALETTE["default"]}" rx="2"><title>{escape(label)}: {value:g}</title></rect>')
        if value:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{base - h - 4:.1f}" text-anchor="middle" '
                         f'class="chart-value">{value:g}</text>')
        if i % label_every == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 8}" text-anchor="middle" '
                         f'class="chart-label">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every interpolated label is escaped above)


def progress(fraction: float, *, title: str, width: int = 320) -> Markup:
    """A progress bar as SVG (no inline style needed, so it works under a strict CSP)."""
    f = min(1.0, max(0.0, fraction))
    return Markup(  # noqa: S704  (only numbers and an escaped title are interpolated)
        f'<svg class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" '
        f'aria-valuenow="{round(f * 100)}" aria-label="{escape(title)}" viewBox="0 0 {width} 14" '
        f'width="{width}" height="14"><rect width="{width}" height="14" rx="7" class="chart-track"/>'
        f'<rect width="{width * f:.1f}" height="14" rx="7" fill="{PALETTE["ok"]}"/></svg>')
