"""The report charts as SVG: escaped labels and links, gaps for missing values, round axes, nothing for no data."""

from __future__ import annotations

import re

from api.console import charts


def test_lines_escape_labels_and_links_and_leave_gaps() -> None:
    svg = str(charts.lines(["<b>", "2", "3"], [charts.Series("median & more", [60.0, None, 180.0]),
                                              charts.Series("p90", [120.0, 150.0, 300.0], "warn", dashed=True)],
                           title="FRT <x>", links=["/r?a=1&b=<2>", None, "/r?c=3"], axis="duration"))
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "FRT &lt;x&gt;" in svg and "median &amp; more" in svg
    assert 'href="/r?a=1&amp;b=&lt;2&gt;"' in svg and svg.count("<a href=") == 4  # two series, two linked periods
    assert svg.count("<polyline") == 3  # the median line breaks at the missing value: two runs
    assert 'stroke-dasharray="5 3"' in svg
    assert re.findall(r'class="chart-value">([^<]+)</text>', svg)[:5] == ["0", "120", "240", "360", "480"]


def test_round_axis_steps() -> None:
    assert [charts._nice_top(v) for v in (0, 1, 3, 9, 45, 117)] == [4.0, 4.0, 4.0, 12.0, 60.0, 120.0]
    assert charts._nice_top(6400, "duration") == 7200.0 and charts._nice_top(200, "duration") == 240.0
    assert charts._nice_top(0.7, "decimal") == 0.8


def test_stacked_columns_sum_their_layers_and_link_each_column() -> None:
    svg = str(charts.stacked(["Mon", "Tue"], [charts.Stack("bot", [2, 0], "ok"), charts.Stack("people", [1, 4])],
                             title="Volume", links=["/d/1", "/d/2"]))
    assert svg.count("<rect") == 3  # a zero layer draws nothing
    assert ">3</text>" in svg and ">4</text>" in svg  # the totals above the columns
    assert '<a href="/d/1">' in svg and '<a href="/d/2">' in svg
    assert "Mon · bot: 2" in svg


def test_distribution_shows_count_and_share() -> None:
    svg = str(charts.distribution([("1", 1), ("5", 3)], title="CSAT", links=["/low", "/all"]))
    assert "1 · 25 %" in svg and "3 · 75 %" in svg and svg.count("<a href=") == 2


def test_no_data_draws_nothing() -> None:
    assert charts.lines(["a"], [charts.Series("s", [None])], title="t") == ""
    assert charts.stacked(["a"], [charts.Stack("s", [0])], title="t") == ""
    assert charts.distribution([("1", 0)], title="t") == ""
