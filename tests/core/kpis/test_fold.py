"""The KPI fold job: each change folded once across two instances, catching up after downtime, ids that commit out
of order, incremental folding equal to a rebuild, a rebuild that resumes, and a time-zone change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.audit import service as audit
from core.clock import ManualClock
from core.customers.models import Customer
from core.jobs import JobRegistry
from core.kpis import service as kpis
from core.kpis.fold import HOLE_TTL, JOB_NAME, Cursor, KpiFold
from core.kpis.models import KpiHourly, KpiRollup, KpiState, KpiTicketFacts
from core.kpis.schemas import GroupBy, KpiQuery
from core.tickets.models import AuthorKind, Direction, Message, Ticket, TicketStatus
from tests.core.kpis.helpers import D1, at, drive_utcnow, scenario_app
from tests.core.kpis.test_scenario import play
from tests.support.waiting import wait_for

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def new_ticket(sessionmaker: async_sessionmaker[AsyncSession], at: datetime, *, channel: str = "telegram",
                     intent: str | None = "internet_down", reason: str = "needs_human",
                     message_id: int | None = None) -> int:
    """A ticket as ingest leaves it after an escalation decision (its customer's message carries the decision)."""
    async with sessionmaker() as session, session.begin():
        customer = Customer(name="c", created_at=at, updated_at=at)
        session.add(customer)
        await session.flush()
        ticket = Ticket(customer_id=customer.id, subject="s", status=TicketStatus.open, channel=channel,
                        intent=intent, created_at=at, updated_at=at)
        session.add(ticket)
        await session.flush()
        session.add(Message(id=message_id, ticket_id=ticket.id, direction=Direction.inbound,
                            author_kind=AuthorKind.customer, channel=channel, text="x", intent=intent,
                            extra={"action": "escalate", "reason": reason}, created_at=at))
        return ticket.id


async def resolve(sessionmaker: async_sessionmaker[AsyncSession], ticket_id: int, at: datetime) -> None:
    async with sessionmaker() as session, session.begin():
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None
        ticket.status, ticket.resolved_at, ticket.updated_at = TicketStatus.resolved, at, at
        audit.record(session, None, "ticket.status", "ticket", ticket_id, old="open", new="resolved")


async def totals(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    query = KpiQuery(date_from=NOW.date() - timedelta(days=1), date_to=NOW.date() + timedelta(days=1))
    async with sessionmaker() as session:
        report = await kpis.report(session, query, time_zone="Europe/Moscow")
    return report.totals.tickets, report.totals.resolved


async def mode(sessionmaker: async_sessionmaker[AsyncSession]) -> str | None:
    async with sessionmaker() as session:
        state = await session.get(KpiState, "fold")
        return state.data.get("mode") if state is not None else None


async def test_two_instances_fold_each_change_once_and_catch_up_after_downtime(
        db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock(NOW)
    folds = [KpiFold(sessionmaker, clock, time_zone="Europe/Moscow") for _ in range(2)]
    registries = [JobRegistry(clock, engine=db_engine) for _ in range(2)]
    for registry, fold in zip(registries, folds, strict=True):
        registry.start(fold.job(5.0))

    async def advanced(condition: Any) -> Any:
        async def check() -> Any:
            clock.advance(5)
            return await condition()
        return await wait_for(check, "the fold to catch up")

    try:
        await advanced(lambda: _is(mode(sessionmaker), "fold"))
        ids = [await new_ticket(sessionmaker, NOW + timedelta(minutes=i)) for i in range(3)]
        await advanced(lambda: _is(totals(sessionmaker), (3, 0)))
        # Every ticket's facts changed once, whichever instance folded it.
        assert sum(f.stats.folded for f in folds) == 3
        health = [r.get(JOB_NAME) for r in registries]
        assert all(h is not None and h.failures == 0 for h in health)
    finally:
        for registry in registries:
            await registry.stop(deadline=5)

    # Downtime: changes pile up with no instance folding; the next one to start catches up.
    await resolve(sessionmaker, ids[0], NOW + timedelta(hours=1))
    await new_ticket(sessionmaker, NOW + timedelta(hours=1))
    await new_ticket(sessionmaker, NOW + timedelta(hours=2))
    assert await totals(sessionmaker) == (3, 0)
    late = KpiFold(sessionmaker, clock, time_zone="Europe/Moscow")
    registry = JobRegistry(clock, engine=db_engine)
    registry.start(late.job(5.0))
    try:
        await advanced(lambda: _is(totals(sessionmaker), (5, 1)))
        assert late.stats.folded == 3 and late.stats.rebuilt == 0
    finally:
        await registry.stop(deadline=5)


async def _is(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def test_an_id_that_commits_after_a_higher_one_is_still_folded(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Ids are handed out before commit: message 5 may commit after message 10 was folded."""
    clock = ManualClock(NOW)
    fold = KpiFold(sessionmaker, clock, time_zone="Europe/Moscow")
    while await fold.run_once():
        pass
    await new_ticket(sessionmaker, NOW, message_id=10)
    while await fold.run_once():
        pass
    async with sessionmaker() as session:
        state = await session.get(KpiState, "fold")
        assert state is not None
        cursor = Cursor.of(state.data["messages"])
    assert cursor.hi == 10 and set(cursor.holes) == set(range(1, 10))
    await new_ticket(sessionmaker, NOW, message_id=5, intent="complaint")
    while await fold.run_once():
        pass
    assert await totals(sessionmaker) == (2, 0)
    async with sessionmaker() as session:
        cursor = Cursor.of((await session.get(KpiState, "fold")).data["messages"])  # type: ignore[union-attr]
    assert cursor.hi == 10 and 5 not in cursor.holes


def test_holes_are_given_up_after_their_time() -> None:
    cursor = Cursor(hi=3)
    cursor.advance([4, 7], NOW)
    assert cursor.hi == 7 and set(cursor.holes) == {5, 6}
    cursor.advance([6], NOW + timedelta(seconds=1))
    assert set(cursor.holes) == {5}
    cursor.advance([], NOW + HOLE_TTL + timedelta(seconds=1))
    assert cursor.holes == {} and cursor.hi == 7
    assert Cursor.of(cursor.as_json()) == cursor


async def snapshot(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[Any, ...]:
    async with sessionmaker() as session:
        rollups = sorted(tuple(r) for r in (await session.execute(select(
            *(c for c in KpiRollup.__table__.columns)))).all())
        hourly = sorted(tuple(r) for r in (await session.execute(select(
            *(c for c in KpiHourly.__table__.columns)))).all())
        facts = sorted((r.ticket_id, r.day, r.resolved, r.frt_s, r.res_s, r.csat_score, r.sla_fr)
                       for r in await session.scalars(select(KpiTicketFacts)))
    return rollups, hourly, facts


async def test_folding_change_by_change_equals_a_rebuild(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock(at(D1, "08:00"))
    drive_utcnow(monkeypatch, clock)
    async with scenario_app(db_url, clock, sessionmaker) as s:
        s.fold_each_step = True
        await play(s)
        folded = await snapshot(sessionmaker)
        assert s.fold is not None and s.fold.stats.folded > 5  # tickets were folded again as they changed
        assert len(folded[0]) > 10 and len(folded[2]) == 5
        rebuilt_by = KpiFold(sessionmaker, clock, time_zone="Europe/Moscow")
        assert await rebuilt_by.rebuild(resume=False) == 5
        assert await snapshot(sessionmaker) == folded


async def test_a_rebuild_resumes_where_it_stopped_and_a_time_zone_change_needs_one(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock(NOW)
    # 22:30 UTC is 01:30 the next day in Moscow.
    late_evening = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)
    for i in range(5):
        await new_ticket(sessionmaker, late_evening + timedelta(minutes=i))
    fold = KpiFold(sessionmaker, clock, time_zone="Europe/Moscow", rebuild_chunk=2)
    assert await fold.run_once() and await mode(sessionmaker) == "facts"  # 2 of 5 walked, then "stopped"
    progress: list[tuple[int, int]] = []
    again = KpiFold(sessionmaker, clock, time_zone="Europe/Moscow", rebuild_chunk=2)
    assert await again.rebuild(progress=lambda done, total: progress.append((done, total))) == 3
    assert progress[0] == (4, 5) and progress[-1] == (5, 5)
    day = await by_day(sessionmaker, "Europe/Moscow")
    assert day == {date(2026, 3, 2): 5}

    utc = KpiFold(sessionmaker, clock, time_zone="UTC")
    await utc.run_once()
    assert utc.details()["rebuild_needed"] is True  # the aggregates stay in Moscow time until rebuilt
    assert await by_day(sessionmaker, "UTC") == {date(2026, 3, 2): 5}
    await utc.rebuild()
    assert utc.details()["rebuild_needed"] is False
    assert await by_day(sessionmaker, "UTC") == {date(2026, 3, 1): 5}


async def by_day(sessionmaker: async_sessionmaker[AsyncSession], zone: str) -> dict[date, int]:
    query = KpiQuery(date_from=date(2026, 2, 28), date_to=date(2026, 3, 3), group_by=GroupBy.day)
    async with sessionmaker() as session:
        report = await kpis.report(session, query, time_zone=zone)
    return {date.fromisoformat(g.key): g.tickets for g in report.groups if g.key and g.tickets}


async def test_hourly_counts_by_intent_channel_and_reason(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock(NOW)
    base = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    await new_ticket(sessionmaker, base + timedelta(minutes=5), intent="internet_down", reason="needs_human")
    await new_ticket(sessionmaker, base + timedelta(minutes=50), intent="internet_down", reason="low_confidence",
                     channel="webchat")
    await new_ticket(sessionmaker, base + timedelta(hours=1, minutes=1), intent="complaint",
                     reason="declared_escalate")
    await new_ticket(sessionmaker, base + timedelta(hours=22), intent="complaint", reason="declared_escalate")
    fold = KpiFold(sessionmaker, clock, time_zone="Europe/Moscow")
    while await fold.run_once():
        pass
    h10, h11, next_day = base, base + timedelta(hours=1), base + timedelta(hours=22)
    async with sessionmaker() as session:
        intents = await kpis.counts(session, dimension="intent", start=base + timedelta(minutes=30),
                                    end=base + timedelta(days=1))
        channels = await kpis.counts(session, dimension="channel", start=base, end=h11)
        reasons = await kpis.counts(session, dimension="escalation_reason", start=base, end=base + timedelta(days=1))
        days = await kpis.counts(session, dimension="intent", start=base - timedelta(days=1),
                                 end=base + timedelta(days=2), bucket="day", time_zone="Europe/Moscow")
        with pytest.raises(Exception, match="timezone-aware"):
            await kpis.counts(session, dimension="intent", start=base.replace(tzinfo=None), end=base)
    assert [(r.key, r.bucket_start, r.tickets, r.escalations) for r in intents] == [
        ("internet_down", h10, 2, 2), ("complaint", h11, 1, 1), ("complaint", next_day, 1, 1)]
    assert [(r.key, r.tickets) for r in channels] == [("telegram", 1), ("webchat", 1)]
    assert [(r.key, r.bucket_start, r.tickets) for r in reasons] == [
        ("low_confidence", h10, 1), ("needs_human", h10, 1), ("declared_escalate", h11, 1),
        ("declared_escalate", next_day, 1)]
    # 08:00 UTC on 2 March is 11:00 in Moscow: days start at Moscow midnight (21:00 UTC the day before).
    moscow_2 = datetime(2026, 3, 1, 21, 0, tzinfo=UTC)
    assert [(r.key, r.bucket_start, r.tickets) for r in days] == [
        ("complaint", moscow_2, 1), ("internet_down", moscow_2, 2), ("complaint", moscow_2 + timedelta(days=1), 1)]

