"""Rising problems on a manual clock: an episode raises one alert, stays quiet while it lasts, resolves when the volume
is back to normal, and a second episode raises again; two registries running the job raise it once."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.clock import ManualClock
from core.events import EventBus, Topic
from core.jobs import JobRegistry
from core.kpis import service as kpis
from core.problems import service as problems
from core.problems.config import ProblemsSettings
from core.problems.job import JOB_NAME, RisingProblems
from core.problems.models import Dimension, ProblemAlert
from tests.core.problems.helpers import kpis_up_to_date, tickets
from tests.support.waiting import until

SETTINGS = ProblemsSettings()  # a 2 h window, 14 days of baseline, 3x and at least 10 tickets, resolve under 1.5x
TODAY = datetime(2026, 3, 16, tzinfo=UTC)
NOW = TODAY + timedelta(hours=11, minutes=30)  # the window: the 10:00 hour and half of the 11:00 one


async def usual_traffic(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """For 14 days at 10:00-12:00: internet_down 2 tickets an hour, billing 10 an hour, all by REST (so the channel
    does not rise when one intent does). Today the billing traffic is as usual."""
    async with sessionmaker() as s, s.begin():
        for day in range(0, 15):
            for hour in (10, 11):
                at = TODAY - timedelta(days=day) + timedelta(hours=hour, minutes=5)
                if day:
                    await tickets(s, at, 2, intent="internet_down")
                await tickets(s, at, 10 if day or hour == 10 else 5, intent="billing")  # today: 11:00-11:30 only


async def spike(sessionmaker: async_sessionmaker[AsyncSession], at: datetime, n: int) -> None:
    async with sessionmaker() as s, s.begin():
        await tickets(s, at, n, intent="internet_down", reason="needs_human")
    await kpis_up_to_date(sessionmaker)


async def evaluate(sessionmaker: async_sessionmaker[AsyncSession], now: datetime) -> problems.RisingOutcome:
    async with sessionmaker() as s, s.begin():
        return await problems.evaluate_rising(s, SETTINGS, now)


async def all_alerts(sessionmaker: async_sessionmaker[AsyncSession]) -> list[ProblemAlert]:
    async with sessionmaker() as s:
        return list((await s.scalars(select(ProblemAlert).order_by(ProblemAlert.id))).all())


async def test_usual_volume_is_the_median_of_the_same_hours(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await usual_traffic(sessionmaker)
    await spike(sessionmaker, TODAY + timedelta(hours=10, minutes=40), 11)
    async with sessionmaker() as s:
        intents = await problems.volumes(s, Dimension.intent, NOW, SETTINGS)
        channels = await problems.volumes(s, Dimension.channel, NOW, SETTINGS)
    internet = intents["internet_down"]
    # Each previous day: the full 10:00 hour (2) and half of the 11:00 one (2 x 0.5).
    assert internet.count == 11 and internet.samples == (3.0,) * 14 and internet.usual == 3.0
    assert round(internet.ratio, 3) == 3.667 and problems.is_rising(internet, SETTINGS)
    assert intents["billing"].count == 15 and intents["billing"].usual == 15.0
    assert not problems.is_rising(intents["billing"], SETTINGS)
    rest = channels["rest"]
    assert (rest.count, rest.usual) == (26, 18.0) and not problems.is_rising(rest, SETTINGS)
    # The same hours as the KPI engine's own counts: today's window and yesterday's 10:00 hour.
    async with sessionmaker() as s:
        hours = await kpis.counts(s, dimension="intent", start=TODAY - timedelta(days=1), end=NOW)
    per_hour = {(r.key, r.bucket_start): r.tickets for r in hours}
    assert per_hour[("internet_down", TODAY + timedelta(hours=10))] == 11
    assert per_hour[("internet_down", TODAY - timedelta(days=1) + timedelta(hours=10))] == 2


async def test_one_alert_per_episode(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await usual_traffic(sessionmaker)
    # 1 -> 3 is not an alert: 9 tickets are 3x the usual but fewer than the minimum of 10.
    await spike(sessionmaker, TODAY + timedelta(hours=10, minutes=40), 9)
    assert (await evaluate(sessionmaker, NOW)).raised == []
    await spike(sessionmaker, TODAY + timedelta(hours=11, minutes=10), 3)  # 12 now, 4x the usual
    raised = (await evaluate(sessionmaker, NOW)).raised
    assert [(a.dimension, a.key, a.count, a.usual, a.ratio) for a in raised] == [
        (Dimension.intent, "internet_down", 12, 3.0, 4.0)]
    # While it lasts: updated, never raised again.
    await spike(sessionmaker, TODAY + timedelta(hours=11, minutes=35), 6)
    later = await evaluate(sessionmaker, NOW + timedelta(minutes=10))
    assert later.raised == [] and later.resolved == [] and [a.count for a in later.updated] == [18]
    # Two hours on, the spike has left the window: back to normal, resolved.
    over = await evaluate(sessionmaker, NOW + timedelta(hours=2))
    assert [a.key for a in over.resolved] == ["internet_down"] and over.raised == []
    (alert,) = await all_alerts(sessionmaker)
    assert alert.resolved_at == NOW + timedelta(hours=2) and alert.raised_count == 12
    assert (alert.peak_count, alert.peak_ratio) == (18, 5.4)  # at 11:40 the usual is 2 + 2 x 40/60
    assert (await evaluate(sessionmaker, NOW + timedelta(hours=2, minutes=5))).resolved == []
    # A second episode raises a second alert; at 13:00-15:00 nothing usually comes, so the channel rises too.
    await spike(sessionmaker, TODAY + timedelta(hours=13, minutes=40), 12)
    again = await evaluate(sessionmaker, NOW + timedelta(hours=2, minutes=10))
    assert sorted((a.dimension, a.key, a.count, a.usual) for a in again.raised) == [
        (Dimension.channel, "rest", 12, 0.0), (Dimension.intent, "internet_down", 12, 0.0)]
    first, *second = await all_alerts(sessionmaker)
    assert first.resolved_at is not None and [a.resolved_at for a in second] == [None, None]
    async with sessionmaker() as s:
        assert sorted(a.id for a in await problems.active_alerts(s)) == sorted(a.id for a in second)
        page = await problems.alert_history(s, limit=2)
        assert [a.id for a in page.items] == [second[1].id, second[0].id] and page.next_before == second[0].id
        older = await problems.alert_history(s, before=page.next_before, limit=2)
        assert [a.id for a in older.items] == [first.id] and older.next_before is None


async def test_hysteresis_keeps_an_alert_while_the_volume_stays_high(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await usual_traffic(sessionmaker)
    await spike(sessionmaker, TODAY + timedelta(hours=10, minutes=40), 12)
    assert len((await evaluate(sessionmaker, NOW)).raised) == 1
    # An hour later: 5 tickets since 11:00 against a usual 2. Neither enough to raise (under 3x, under 10 tickets)
    # nor low enough to resolve (over 1.5x, over half the minimum): still the same episode.
    await spike(sessionmaker, TODAY + timedelta(hours=11, minutes=40), 5)
    later = NOW + timedelta(hours=1, minutes=20)
    async with sessionmaker() as s:
        volume = (await problems.volumes(s, Dimension.intent, later, SETTINGS))["internet_down"]
    assert (volume.count, volume.usual, volume.ratio) == (5, 2.0, 2.5) and not problems.is_rising(volume, SETTINGS)
    outcome = await evaluate(sessionmaker, later)
    assert outcome.resolved == [] and outcome.raised == [] and [a.ratio for a in outcome.updated] == [2.5]
    # Under 1.5x: resolved.
    outcome = await evaluate(sessionmaker, later + timedelta(hours=1))
    assert [a.key for a in outcome.resolved] == ["internet_down"]


@contextlib.asynccontextmanager
async def registries(engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], clock: ManualClock,
                     bus: EventBus) -> AsyncIterator[list[JobRegistry]]:
    pair = [JobRegistry(clock, engine=engine, bus=bus) for _ in range(2)]
    for registry in pair:
        registry.start(RisingProblems(sessionmaker, bus, clock, SETTINGS).job())
    try:
        yield pair
    finally:
        for registry in pair:
            await registry.stop()


@pytest.mark.usefixtures("db_engine")
async def test_the_job_on_two_registries_raises_and_resolves_once(
        db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await usual_traffic(sessionmaker)
    await spike(sessionmaker, TODAY + timedelta(hours=10, minutes=40), 12)
    clock, bus = ManualClock(NOW), EventBus()
    events: list[dict[str, Any]] = []
    async with bus.subscribe(Topic.PROBLEMS) as queue, registries(db_engine, sessionmaker, clock, bus) as pair:

        def runs() -> int:
            return sum(h.runs for r in pair if (h := r.get(JOB_NAME)) is not None)

        def drain() -> list[dict[str, Any]]:
            while not queue.empty():
                events.append(queue.get_nowait()[1])
            return events

        async def next_round(seconds: float) -> None:
            before = runs()
            await until(lambda: clock.sleepers >= 2, "both registries wait on the clock")
            clock.advance(seconds)
            await until(lambda: runs() >= before + 1 and clock.sleepers >= 2, "the job ran again")

        await until(lambda: len(drain()) >= 1, "the alert's event")
        await next_round(SETTINGS.rising_every_seconds)
        await next_round(SETTINGS.rising_every_seconds)
        alerts = await all_alerts(sessionmaker)
        assert len(alerts) == 1 and alerts[0].resolved_at is None
        assert [(e["kind"], e["key"]) for e in drain()] == [("raised", "internet_down")]
        # The spike leaves the window: resolved once.
        await next_round(2 * 3600)
        await until(lambda: len(drain()) >= 2, "the resolution's event")
        await next_round(SETTINGS.rising_every_seconds)
        assert [(e["kind"], e["key"]) for e in drain()] == [("raised", "internet_down"), ("resolved", "internet_down")]
        (alert,) = await all_alerts(sessionmaker)
        assert alert.resolved_at is not None
        health = [r.health()[JOB_NAME] for r in pair]
        assert sum(h["raised"] for h in health) == 1 and sum(h["resolved"] for h in health) == 1
