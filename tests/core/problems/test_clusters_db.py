"""The clusters read the most recent not-understood messages of the period, up to the cap, and say how many there
were (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.problems import service as problems
from core.problems.config import ProblemsSettings
from core.problems.schemas import PeriodQuery
from tests.core.problems.helpers import kpis_up_to_date, tickets

DAY = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
QUERY = PeriodQuery(date_from=date(2026, 3, 10), date_to=date(2026, 3, 10))


async def test_the_most_recent_up_to_the_cap(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s, s.begin():
        for i in range(10):  # the older ones: about the router
            await tickets(s, DAY + timedelta(minutes=i), reason="low_confidence", text=f"роутер мигает красным {i}")
        for i in range(4):  # the newest: about the TV box
            await tickets(s, DAY + timedelta(hours=1, minutes=i), reason="nlu_unavailable",
                          text=f"приставка не показывает каналы {'!' * i}")
        # Not counted: understood, escalated for another reason, or outside the period.
        await tickets(s, DAY, intent="billing", text="роутер мигает красным")
        await tickets(s, DAY, reason="handoff", text="роутер мигает красным")
        await tickets(s, DAY - timedelta(days=1), reason="low_confidence", text="роутер мигает красным")
    await kpis_up_to_date(sessionmaker)
    async with sessionmaker() as s:
        everything = await problems.clusters(s, QUERY, ProblemsSettings(), time_zone="UTC")
        exactly = await problems.clusters(s, QUERY, ProblemsSettings(clusters_max_messages=14), time_zone="UTC")
        capped = await problems.clusters(s, QUERY, ProblemsSettings(clusters_max_messages=10), time_zone="UTC")
    assert (everything.messages, everything.analysed, everything.capped) == (14, 14, False)
    assert [c.size for c in everything.clusters] == [10, 4]
    assert (exactly.messages, exactly.analysed, exactly.capped) == (14, 14, False)
    # The 10 most recent: the 4 about the TV box and the 6 newest about the router; the total from the KPI volumes.
    assert (capped.messages, capped.analysed, capped.capped, capped.clustered) == (14, 10, True, 10)
    router, tv = capped.clusters
    assert router.size == 6 and tv.size == 4 and all(s.text.startswith("приставка") for s in tv.choices)
    # Digits aside the router texts are one text, counted 6 times; the oldest analysed is the 5th.
    assert [(c.text, c.count) for c in router.choices] == [("роутер мигает красным 9", 6)]
    assert (router.first_at, router.last_at) == (DAY + timedelta(minutes=4), DAY + timedelta(minutes=9))
