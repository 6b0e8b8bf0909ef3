"""Small inline-SVG charts; every label is escaped, and no script or external resource is involved."""

from __future__ import annotations

import math
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
          scale: float | None = None, caption_width: int = 60) -> Markup:
    """Horizontal bars with an optional limit marker per row; `scale` fixes the full width (e.g. 100 %);
    `caption_width` is the room for the number after a bar ("1 h 05 min" needs more than a count)."""
    if not bars:
        return Markup("")
    top = scale or max([b.value for b in bars] + [b.limit or 0 for b in bars] + [1])
    plot = width - label_width - caption_width
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


# --- report charts: series over time, stacked shares, a distribution ----------------------------------------


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a `lines` chart: a value per label (None: no data in that period, drawn as a gap)."""

    name: str
    values: Sequence[float | None]
    tone: str = "default"
    dashed: bool = False


@dataclass(frozen=True, slots=True)
class Stack:
    """One layer of a `stacked` chart: a value per label."""

    name: str
    values: Sequence[float]
    tone: str = "default"


Format = Callable[[float], str]
# Beyond this many periods (a year by day) a chart draws its shape only: no point markers, tooltips or links per
# period (the table under it has every value and link); 365 linked points per series made the page 1 MB heavier.
DENSE = 92


_DURATION_STEPS = (1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 14400, 21600, 43200,
                   86400, 172800, 259200, 432000, 604800)


def _nice_top(value: float, axis: str = "count") -> float:
    """The top of an axis with 4 even steps at or above `value`: steps of 1, 2, 5 x 10^n for counts (whole numbers
    at every line), 1, 2, 2.5, 5 x 10^n for decimals, and whole seconds, minutes, hours or days for durations."""
    if value <= 0:
        return 4.0 if axis == "count" else 1.0
    wanted = value / 4
    if axis == "duration":
        step = next((float(s) for s in _DURATION_STEPS if s >= wanted), math.ceil(wanted / 604800) * 604800.0)
        return step * 4
    exponent = 10 ** math.floor(math.log10(wanted))
    steps = [s * exponent for s in (1, 1.5, 2, 2.5, 3, 4, 5, 10)]
    if axis == "count":  # whole numbers at every line
        steps = [max(1.0, s) for s in steps if max(1.0, s) == int(max(1.0, s))]
    step = next(s for s in steps if s >= wanted - 1e-12)
    return float(step * 4)


def _linked_svg(parts: list[str]) -> Markup:
    """A chart whose bars or points may be links: an image role may hold nothing interactive (axe-core's
    nested-interactive: screen readers skip an image's content), so a chart with links is a named group."""
    svg = "".join(parts)
    if "<a href=" in svg:
        svg = svg.replace('role="img"', 'role="group"', 1)
    return Markup(svg)  # noqa: S704  (every interpolated label and link is escaped by the callers)


def _open(width: int, height: int, title: str) -> list[str]:
    return [f'<svg class="chart chart-wide" role="img" viewBox="0 0 {width} {height}" width="100%" '
            f'preserveAspectRatio="xMinYMin meet" aria-label="{escape(title)}"><title>{escape(title)}</title>']


def _legend(items: Sequence[tuple[str, str, bool]], x: float, y: float) -> list[str]:
    parts, cursor = [], x
    for name, tone, dashed in items:
        color = PALETTE.get(tone, PALETTE["default"])
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        parts.append(f'<line x1="{cursor:.1f}" x2="{cursor + 18:.1f}" y1="{y - 4:.1f}" y2="{y - 4:.1f}" '
                     f'stroke="{color}" stroke-width="3"{dash}/>')
        parts.append(f'<text x="{cursor + 23:.1f}" y="{y:.1f}" class="chart-label">{escape(name)}</text>')
        cursor += 23 + 7.2 * len(name) + 16
    return parts


def _y_axis(top: float, fmt: Format, left: int, right: float, plot_top: float, base: float,
            steps: int = 4) -> list[str]:
    parts = []
    for i in range(steps + 1):
        value = top * i / steps
        y = base - (base - plot_top) * i / steps
        parts.append(f'<line x1="{left}" x2="{right:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'class="{"chart-axis" if i == 0 else "chart-grid"}"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="chart-value">'
                     f'{escape(fmt(value))}</text>')
    return parts


def _x_labels(labels: Sequence[str], x_of: Callable[[int], float], height: int) -> list[str]:
    """Every label when they fit, else every n-th (the first period always named)."""
    every = max(1, math.ceil(len(labels) / 12))
    return [f'<text x="{x_of(i):.1f}" y="{height - 6}" text-anchor="middle" class="chart-label">'
            f'{escape(label)}</text>' for i, label in enumerate(labels) if i % every == 0]


def lines(labels: Sequence[str], series: Sequence[Series], *, title: str, fmt: Format = lambda v: f"{v:g}",
          scale: float | None = None, area: bool = False, links: Sequence[str | None] | None = None,
          axis: str = "decimal", steps: int = 4, tip: Format | None = None, width: int = 640,
          height: int = 230) -> Markup:
    """Lines over time (`area`: the first series filled below): a y axis worded by `fmt`, a point per period with
    its value in a tooltip and, with `links`, a link per period (drill-down); `scale` fixes the top (1.0 for
    shares; `steps` lines divide it), else `axis` (count, decimal, duration) picks 4 round steps. A period without
    a value is a gap in the line, not a zero; `tip` words a point's tooltip when it needs more than the axis."""
    if not labels or not any(v is not None for s in series for v in s.values):
        return Markup("")
    left, right, plot_top, base = 84, width - 30, 30.0, float(height - 26)
    top = scale or _nice_top(max(v for s in series for v in s.values if v is not None), axis)
    step = (right - left) / max(1, len(labels) - 1) if len(labels) > 1 else 0.0

    def x_of(i: int) -> float:
        return left + i * step if len(labels) > 1 else (left + right) / 2

    def y_of(v: float) -> float:
        return base - (base - plot_top) * min(v, top) / top

    parts = _open(width, height, title)
    parts += _y_axis(top, fmt, left, right, plot_top, base, steps if scale else 4)
    parts += _legend([(s.name, s.tone, s.dashed) for s in series], left, 16)
    for n, s in enumerate(series):
        color = PALETTE.get(s.tone, PALETTE["default"])
        runs: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append((x_of(i), y_of(v)))
        for run in (r for r in runs if r):
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            if area and n == 0 and len(run) > 1:
                parts.append(f'<polygon points="{run[0][0]:.1f},{base:.1f} {path} {run[-1][0]:.1f},{base:.1f}" '
                             f'fill="{color}" class="chart-area"/>')
            dash = ' stroke-dasharray="5 3"' if s.dashed else ""
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.2"{dash}/>')
        for i, v in enumerate(s.values):
            if v is None or len(labels) > DENSE:
                continue
            point = (f'<circle cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="3.6" fill="{color}" class="chart-point">'
                     f'<title>{escape(labels[i])} · {escape(s.name)}: {escape((tip or fmt)(v))}</title></circle>')
            link = links[i] if links is not None and i < len(links) else None
            parts.append(f'<a href="{escape(link)}">{point}</a>' if link else point)
    parts += _x_labels(labels, x_of, height)
    parts.append("</svg>")
    return _linked_svg(parts)


def stacked(labels: Sequence[str], stacks: Sequence[Stack], *, title: str, fmt: Format = lambda v: f"{v:g}",
            links: Sequence[str | None] | None = None, width: int = 640, height: int = 230) -> Markup:
    """Stacked columns, a column per period and a layer per `stacks` entry (e.g. resolved by the bot / by agents /
    not resolved), each layer's value in its tooltip, the column's total above it; `links`: a link per column."""
    totals = [sum(s.values[i] for s in stacks) for i in range(len(labels))]
    if not labels or not any(totals):
        return Markup("")
    left, right, plot_top, base = 84, width - 12, 30.0, float(height - 26)
    top = _nice_top(max(totals), "count")
    step = (right - left) / len(labels)
    bar_w = max(3.0, min(42.0, step * 0.72))

    def x_of(i: int) -> float:
        return left + i * step + step / 2

    parts = _open(width, height, title)
    parts += _y_axis(top, fmt, left, right, plot_top, base)
    parts += _legend([(s.name, s.tone, False) for s in stacks], left, 16)
    for i, label in enumerate(labels):
        y = base
        column = []
        for s in stacks:
            value = s.values[i]
            if value <= 0:
                continue
            h = (base - plot_top) * value / top
            y -= h
            tip = ("" if len(labels) > DENSE
                   else f"<title>{escape(label)} · {escape(s.name)}: {escape(fmt(value))}</title>")
            column.append(f'<rect x="{x_of(i) - bar_w / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                          f'fill="{PALETTE.get(s.tone, PALETTE["default"])}">{tip}</rect>')
        if totals[i] and len(labels) <= 31:
            column.append(f'<text x="{x_of(i):.1f}" y="{y - 4:.1f}" text-anchor="middle" class="chart-value">'
                          f'{escape(fmt(totals[i]))}</text>')
        link = links[i] if links is not None and i < len(links) and len(labels) <= DENSE else None
        body = "".join(column)
        parts.append(f'<a href="{escape(link)}">{body}</a>' if link and body else body)
    parts += _x_labels(labels, x_of, height)
    parts.append("</svg>")
    return _linked_svg(parts)


def distribution(counts: Sequence[tuple[str, int]], *, title: str, tones: Sequence[str] | None = None,
                 caption: Callable[[int, float], str] | None = None, links: Sequence[str | None] | None = None,
                 width: int = 520, row: int = 26, label_width: int = 90) -> Markup:
    """How answers spread over the values (CSAT 1-5): a bar per value with its count and share of all answers;
    `caption(count, share)` words the number beside a bar; `links`: a link per bar (the tickets behind it)."""
    total = sum(n for _, n in counts)
    if not counts or total == 0:
        return Markup("")
    plot = width - label_width - 110
    top = max(n for _, n in counts)
    height = row * len(counts) + 8
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
             f'preserveAspectRatio="xMinYMin meet" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for i, (label, n) in enumerate(counts):
        y = 4 + i * row
        share = n / total
        tone = tones[i] if tones is not None and i < len(tones) else "default"
        text = caption(n, share) if caption else f"{n} · {share * 100:.0f} %"
        bar = (f'<rect x="{label_width}" y="{y + 3}" width="{plot * n / top:.1f}" height="{row - 8}" rx="2" '
               f'fill="{PALETTE.get(tone, PALETTE["default"])}"><title>{escape(label)}: {escape(text)}</title></rect>')
        link = links[i] if links is not None and i < len(links) else None
        parts.append(f'<text x="{label_width - 8}" y="{y + row * 0.62:.1f}" text-anchor="end" class="chart-label">'
                     f'{escape(label)}</text>')
        parts.append(f'<rect x="{label_width}" y="{y + 3}" width="{plot}" height="{row - 8}" class="chart-track"/>')
        parts.append(f'<a href="{escape(link)}">{bar}</a>' if link and n else bar)
        parts.append(f'<text x="{label_width + plot + 6}" y="{y + row * 0.62:.1f}" class="chart-value">'
                     f'{escape(text)}</text>')
    parts.append("</svg>")
    return _linked_svg(parts)
