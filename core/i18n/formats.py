"""Numbers, shares and durations worded for people in the reader's language ("1 ч 05 мин", "12 345", "83,6 %").

The console's reports page and the weekly summary e-mail say the same figures the same way. Digits are grouped
and decimals marked as the language writes them (the separators from Babel's locale data, read once per language:
a year's table by day has thousands of figures, and Babel's own formatter took ~0.3 ms each); a duration is its
two largest units.
"""

from __future__ import annotations

import functools

from babel.numbers import get_decimal_symbol, get_group_symbol

from core.i18n import Translator, normalise

NBSP = "\u00a0"
DASH = "—"  # no data (nothing to take a median or a share of)


@functools.cache
def _symbols(language: str) -> tuple[str, str]:
    """(group separator, decimal mark) of a language: `\u00a0`, `,` in Russian; `,`, `.` in English."""
    return get_group_symbol(language), get_decimal_symbol(language)


def _localised(text: str, language: str | None) -> str:
    """Python's `1,234.5` written with the language's separators."""
    group, mark = _symbols(normalise(language))
    return text.replace(",", "\0").replace(".", mark).replace("\0", group)


def number(value: float | None, language: str | None, *, digits: int = 0) -> str:
    """A count or a measure: `12 345` (ru) / `12,345` (en); `digits` decimals at most (trailing zeros dropped)."""
    if value is None:
        return DASH
    text = f"{value:,.{digits}f}"
    if digits:
        text = text.rstrip("0").rstrip(".")
    return _localised(text, language)


def fixed(value: float | None, language: str | None, *, digits: int = 1) -> str:
    """A value with exactly `digits` decimals (a CSAT average: `4,3` / `4.3`)."""
    if value is None:
        return DASH
    return _localised(f"{value:,.{digits}f}", language)


def percent(rate: float | None, language: str | None, *, digits: int = 1) -> str:
    """A share 0..1 as a percentage: `83,6 %` (ru) / `83.6 %` (en)."""
    if rate is None:
        return DASH
    return f"{fixed(rate * 100, language, digits=digits)}{NBSP}%"


def duration(seconds: float | None, _: Translator) -> str:
    """A duration in its two largest units: `45 с`, `12 мин`, `1 ч 05 мин`, `2 д 3 ч` (English: s, min, h, d)."""
    if seconds is None:
        return DASH
    total = round(seconds)
    if total < 60:
        return _("duration.s", s=total)
    minutes = round(total / 60)
    if minutes < 60:
        return _("duration.m", m=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return _("duration.hm", h=hours, m=f"{minutes:02d}")
    days, hours = divmod(hours, 24)
    return _("duration.dh", d=days, h=hours)


def change(current: float | None, previous: float | None) -> float | None:
    """The relative change from `previous` to `current` (0.25: +25 %); None when either is missing or previous is 0."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / abs(previous)


def signed_percent(rate: float | None, language: str | None) -> str:
    """A change as `+12 %` / `−5 %` (a real minus sign), `±0 %` for none."""
    if rate is None:
        return DASH
    value = round(rate * 100)
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    return f"{sign}{number(abs(value), language)}{NBSP}%"


def signed_points(delta: float | None, language: str | None) -> str:
    """A change of a share in percentage points: `+3,5 п.п.` is worded by the caller; this is `+3,5`."""
    if delta is None:
        return DASH
    value = round(delta * 100, 1)
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    return f"{sign}{fixed(abs(value), language)}"
