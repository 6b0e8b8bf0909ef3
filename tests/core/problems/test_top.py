"""Top intents and escalation reasons of a period, with exact counts, shares and changes against the previous period
of the same length (local days of the report time zone), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.kpis import service as kpis
from core.problems import service as problems
from core.problems.schemas import TopDimension, TopItem, TopQuery
from tests.core.problems.helpers import kpis_up_to_date, tickets

ZONE = "Europe/Moscow"  # UTC+3 all year
# The period 2 - 8 March 2026 (Moscow days), the previous one 23 February - 1 March.
MAR_2 = datetime(2026, 3, 1, 21, 0, tzinfo=UTC)  # 2 March 00:00 in Moscow
MAR_9 = MAR_2 + timedelta(days=7)
QUERY = TopQuery(date_from=date(2026, 3, 2), date_to=date(2026, 3, 8))


async def scenario(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s, s.begin():
        # This period: internet_down 6 (one at its first instant, one at its last second), billing 3, complaint 1,
        # 2 with no intent: 12 tickets.
        await tickets(s, MAR_2, intent="internet_down", reason="needs_human")
        await tickets(s, MAR_2 + timedelta(days=3), 4, intent="internet_down", reason="needs_human")
        await tickets(s, MAR_9 - timedelta(seconds=1), intent="internet_down", reason="handoff")
        await tickets(s, MAR_2 + timedelta(days=1), 3, intent="billing")
        await tickets(s, MAR_2 + timedelta(days=2), intent="complaint", reason="declared_escalate")
        await tickets(s, MAR_2 + timedelta(days=4), 2, reason="low_confidence")
        # The previous period: internet_down 2, billing 3, tv_down 4 (none now): 9 tickets.
        await tickets(s, MAR_2 - timedelta(seconds=1), 2, intent="internet_down", reason="needs_human")
        await tickets(s, MAR_2 - timedelta(days=6), 3, intent="billing")
        await tickets(s, MAR_2 - timedelta(days=7), 4, intent="tv_down", reason="low_confidence")
        # Outside both: the day after, and the day before the previous period.
        await tickets(s, MAR_9, 5, intent="billing", reason="handoff")
        await tickets(s, MAR_2 - timedelta(days=7, seconds=1), 5, intent="internet_down", reason="handoff")
    await kpis_up_to_date(sessionmaker)


async def test_top_intents_with_their_change(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await scenario(sessionmaker)
    async with sessionmaker() as s:
        report = await problems.top(s, QUERY, time_zone=ZONE)
    assert (report.total, report.previous_total, report.others) == (12, 9, 0)
    assert (report.previous_from, report.previous_to) == (date(2026, 2, 23), date(2026, 3, 1))
    assert report.items == [
        TopItem(key="internet_down", label="internet_down", count=6, share=0.5, previous=2, change=4,
                change_pct=200.0),
        TopItem(key="billing", label="billing", count=3, share=0.25, previous=3, change=0, change_pct=0.0),
        TopItem(key=None, label="No intent recognised", count=2, share=0.1667, previous=0, change=2, change_pct=None),
        TopItem(key="complaint", label="complaint", count=1, share=0.0833, previous=0, change=1, change_pct=None),
    ]
    # The same figures as the KPI engine's own day counts summed over the period.
    async with sessionmaker() as s:
        days = await kpis.counts(s, dimension="intent", start=MAR_2, end=MAR_9, bucket="day", time_zone=ZONE)
    summed: dict[str | None, int] = {}
    for row in days:
        summed[row.key] = summed.get(row.key, 0) + row.tickets
    assert summed == {i.key: i.count for i in report.items}
    async with sessionmaker() as s:
        two = await problems.top(s, QUERY.model_copy(update={"limit": 2}), time_zone=ZONE)
    assert [i.key for i in two.items] == ["internet_down", "billing"] and two.others == 3 and two.total == 12


async def test_top_escalation_reasons_with_labels(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await scenario(sessionmaker)
    query = QUERY.model_copy(update={"dimension": TopDimension.escalation_reason})
    async with sessionmaker() as s:
        en = await problems.top(s, query, time_zone=ZONE)
        ru = await problems.top(s, query, time_zone=ZONE, language="ru")
    assert [(i.key, i.count, i.previous, i.change, i.change_pct) for i in en.items] == [
        ("needs_human", 5, 2, 3, 150.0),
        ("low_confidence", 2, 4, -2, -50.0),
        ("declared_escalate", 1, 0, 1, None),
        ("handoff", 1, 0, 1, None),
    ]
    assert (en.total, en.previous_total) == (9, 6)
    assert [i.share for i in en.items] == [0.5556, 0.2222, 0.1111, 0.1111]
    assert en.items[1].label == "The bot was not sure what was asked"
    assert ru.items[0].label == "Тема требует оператора (у бота нет ответа)"


async def test_an_empty_period_and_bad_periods() -> None:
    with pytest.raises(ValueError, match="from must not be after to"):
        TopQuery(date_from=date(2026, 3, 9), date_to=date(2026, 3, 8))
    with pytest.raises(ValueError, match="at most 366 days"):
        TopQuery(date_from=date(2025, 1, 1), date_to=date(2026, 3, 8))
    TopQuery(date_from=date(2025, 3, 9), date_to=date(2026, 3, 9))  # 366 days is fine


async def test_nothing_in_the_period(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        report = await problems.top(s, QUERY, time_zone=ZONE)
    assert (report.total, report.previous_total, report.items, report.others) == (0, 0, [], 0)
