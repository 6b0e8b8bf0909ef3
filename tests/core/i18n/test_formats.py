"""Figures worded for people: grouping and decimal marks by language, durations in two units, changes signed."""

from __future__ import annotations

import pytest

from core.i18n import formats as fmt
from core.i18n import translator


@pytest.mark.parametrize(("seconds", "en", "ru"), [
    (None, "—", "—"), (0, "0 s", "0 с"), (45.4, "45 s", "45 с"), (59.6, "1 min", "1 мин"), (125, "2 min", "2 мин"),
    (3599, "1 h 00 min", "1 ч 00 мин"), (3900, "1 h 05 min", "1 ч 05 мин"), (86340, "23 h 59 min", "23 ч 59 мин"),
    (90000, "1 d 1 h", "1 д 1 ч"), (10 * 86400, "10 d 0 h", "10 д 0 ч"),
])
def test_durations_in_their_two_largest_units(seconds: float | None, en: str, ru: str) -> None:
    assert fmt.duration(seconds, translator("en")) == en
    assert fmt.duration(seconds, translator("ru")) == ru


def test_numbers_shares_and_changes_by_language() -> None:
    assert fmt.number(1234567, "en") == "1,234,567" and fmt.number(1234567, "ru") == "1\u00a0234\u00a0567"
    assert fmt.number(None, "en") == "—" and fmt.number(0, "ru") == "0"
    assert fmt.percent(0.8356, "en") == "83.6\u00a0%" and fmt.percent(0.8356, "ru") == "83,6\u00a0%"
    assert fmt.percent(None, "ru") == "—" and fmt.percent(1, "en") == "100.0\u00a0%"
    assert fmt.fixed(4.256, "ru", digits=2) == "4,26" and fmt.fixed(4, "en", digits=2) == "4.00"
    assert fmt.change(6, 3) == 1.0 and fmt.change(1, 0) is None and fmt.change(None, 2) is None
    assert fmt.signed_percent(1.0, "en") == "+100\u00a0%" and fmt.signed_percent(-0.054, "ru") == "−5\u00a0%"
    assert fmt.signed_percent(0.001, "en") == "±0\u00a0%" and fmt.signed_percent(12.5, "ru") == "+1\u00a0250\u00a0%"
    assert fmt.signed_points(0.035, "ru") == "+3,5" and fmt.signed_points(-0.1, "en") == "−10.0"
