"""Small inline-SVG charts; every label is escaped, and no script or external resource is involved."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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


def hbars(bars: Sequence[Bar], *, title: str, width: int = 520, row: int = 26, label_width: int = 170,
          scale: float | None = None) -> Markup:
    """Horizontal bars with an optional limit marker per row; `scale` fixes the full width (e.g. 100 %)."""
    if not bars:
        return Markup("")
    top = scale or max([b.value for b in bars] + [b.limit or 0 for b in bars] + [1])
    plot = width - label_width - 60
    height = row * len(bars) + 8
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
             f'preserveAspectRatio="xMinYMin meet" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for i, bar in enumerate(bars):
        y = 4 + i * row
        w = max(0.0, plot * bar.value / top)
        color = PALETTE.get(bar.tone, PALETTE["default"])
        fits = max(8, int(label_width / 6.5))
        label = bar.label if len(bar.label) <= fits else bar.label[:fits - 1] + "…"
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


def columns(points: Sequence[tuple[str, float]], *, title: str, width: int = 560, height: int = 170,
            caption: Callable[[float], str] | None = None) -> Markup:
    """Vertical columns, e.g. tickets per day; labels under every other column when crowded; `caption` words a
    column's value in its tooltip ("5 tickets")."""
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
        tip = escape(caption(value)) if caption else f"{value:g}"
        parts.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                     f'fill="{PALETTE["default"]}" rx="2"><title>{escape(label)}: {tip}</title></rect>')
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


def meter(value: float | None, *, title: str, width: int = 110) -> Markup:
    """A small 0-1 bar for a table cell (precision, recall), coloured by how good the value is."""
    if value is None:
        return Markup("—")
    f = min(1.0, max(0.0, value))
    tone = "ok" if f >= 0.9 else "warn" if f >= 0.7 else "danger"
    return Markup(  # noqa: S704  (only numbers and an escaped title are interpolated)
        f'<svg class="meter" role="img" aria-label="{escape(title)}: {f:.2f}" viewBox="0 0 {width} 10" '
        f'width="{width}" height="10"><rect width="{width}" height="10" rx="2" class="chart-track"/>'
        f'<rect width="{width * f:.1f}" height="10" rx="2" fill="{PALETTE[tone]}"/></svg>')


def scores(items: Sequence[tuple[str, float | None]], *, title: str, targets: Mapping[str, float] | None = None,
           width: int = 520, row: int = 26, label_width: int = 190) -> Markup:
    """Shares on a fixed 0-100 % scale (accuracy, coverage...); `targets` marks a goal on the named rows."""
    targets = targets or {}

    def tone(value: float | None) -> str:
        if value is None:
            return "muted"
        shown = round(value, 3)  # the colour agrees with the rounded percentage printed beside the bar
        return "ok" if shown >= 0.9 else "warn" if shown >= 0.7 else "danger"

    bars = [Bar(label, round((value or 0.0) * 100, 1), tone=tone(value),
                limit=round(targets[label] * 100, 1) if label in targets else None,
                caption="—" if value is None else f"{value * 100:.1f} %")
            for label, value in items]
    return hbars(bars, title=title, width=width, row=row, label_width=label_width, scale=100.0)
