"""The supervisors' board, computed by core/reports on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.assignment.schemas import Presence
from core.db.base import utcnow
from core.reports import service as reports
from core.tickets.models import Ticket
from core.users.models import User
from tests.conftest import REST_HEADERS, rest_message
from tests.core.problems.helpers import kpis_up_to_date, tickets


async def test_board_counts_people_queues_days_and_statuses(
        app_client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession],
        agent: tuple[User, dict[str, str]], supervisor: tuple[User, dict[str, str]],
        admin: tuple[User, dict[str, str]]) -> None:
    numbers = []
    for i, text in enumerate(("internet is down", "no internet again", "my internet", "hello")):
        r = await app_client.post("/channels/rest/messages", headers=REST_HEADERS,
                                  json=rest_message(f"m-{i}", text, sender=f"c-{i}"))
        assert r.status_code == 201, r.text
        numbers.append(r.json()["ticket_number"])
    assert (await app_client.post(f"/tickets/{numbers[1]}/take", headers=agent[1])).status_code == 200
    await kpis_up_to_date(sessionmaker)  # the days come from the KPI engine's hourly volumes

    async with sessionmaker() as session:
        board = await reports.board(session, now=utcnow(), offline_after=timedelta(seconds=90), days=3)

    load = {a.user.email: a.open_count for a in board.agents}
    assert load == {"agent@test.example": 1, "super@test.example": 0}  # admins are not on the board
    # The agent's requests just now count as seen; the supervisor never signed in here.
    presence = {a.user.email: a.presence for a in board.agents}
    assert presence == {"agent@test.example": Presence.online, "super@test.example": Presence.offline}
    queues = {q.team.slug: q for q in board.queues}
    technical = queues["technical"]
    assert (technical.open_count, technical.waiting) == (3, 2)
    # The customer who has waited longest comes first: the first message.
    assert technical.oldest is not None and technical.oldest.number == numbers[0]
    assert (queues["billing"].open_count, queues["billing"].waiting, queues["billing"].oldest) == (0, 0, None)
    assert [n for _, n in board.per_day] == [0, 0, 4]  # all created today, whatever the database's date()
    assert board.by_status == {"open": 3, "bot": 1}  # routed tickets wait open in their queue
    assert [t.number for t in board.tickets] == [numbers[0], numbers[1], numbers[2]]


async def _created_per_day_from_tickets(session: AsyncSession, since: datetime) -> dict[str, int]:
    """The board's former query (a per-day count over the tickets table), unmerged tickets as the rest of the board."""
    day = func.date(Ticket.created_at)
    rows = (await session.execute(select(day, func.count()).where(
        Ticket.created_at >= since, Ticket.merged_into_id.is_(None)).group_by(day))).all()
    return {str(d)[:10]: int(n) for d, n in rows}


async def test_board_days_from_the_kpi_volumes_equal_the_count_over_tickets(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    now = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
    async with sessionmaker() as session, session.begin():
        # Around UTC midnights (the board's days), on several channels, one merged away, some before the 7 days.
        for at, n, channel in ((now - timedelta(days=9), 3, "rest"),
                               (datetime(2026, 3, 3, 23, 59, tzinfo=UTC), 2, "email"),
                               (datetime(2026, 3, 5, 23, 59, 59, tzinfo=UTC), 4, "telegram"),
                               (datetime(2026, 3, 6, 0, 0, 0, tzinfo=UTC), 5, "rest"),
                               (datetime(2026, 3, 8, 12, 0, tzinfo=UTC), 1, "webchat"),
                               (now - timedelta(minutes=5), 6, "rest")):
            await tickets(session, at, n, channel=channel, intent="internet_down")
        newest = await session.scalar(select(func.max(Ticket.id)))
        await session.execute(update(Ticket).where(Ticket.id == newest).values(merged_into_id=newest - 1))
    await kpis_up_to_date(sessionmaker)

    async with sessionmaker() as session:
        board = await reports.board(session, now=now, offline_after=timedelta(seconds=90), days=7)
        since = datetime(2026, 3, 4, tzinfo=UTC)
        expected = await _created_per_day_from_tickets(session, since)
    days = [(since + timedelta(days=i)).date() for i in range(7)]
    assert board.per_day == [(d.strftime("%d.%m"), expected.get(d.isoformat(), 0)) for d in days]
    assert [n for _, n in board.per_day] == [0, 4, 5, 0, 1, 0, 5]  # 3 March 23:59 falls before the days
