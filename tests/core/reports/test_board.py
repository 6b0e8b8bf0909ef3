"""The supervisors' board, computed by core/reports on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.assignment.schemas import Presence
from core.customers.models import Customer
from core.db.base import utcnow
from core.reports import service as reports
from core.tickets.models import Ticket, TicketStatus
from core.users.models import Team, User
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


async def test_board_counts_and_waiting_order_equal_the_former_queries(
        sessionmaker: async_sessionmaker[AsyncSession], agent: tuple[User, dict[str, str]]) -> None:
    """The board's counts (now one grouped read) and longest-waiting tickets (now in the partial index's order,
    one read for every queue) against the per-count queries and the sort the board had before, on tickets of
    every status over three queues, assigned or not, with and without a customer message, one merged away."""
    now = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
    statuses = list(TicketStatus)
    async with sessionmaker() as session, session.begin():
        customer = Customer(name="C", language="en")
        session.add(customer)
        await session.flush()
        teams = list((await session.scalars(select(Team.id).order_by(Team.id))).all())[:3]
        rows = []
        for i in range(90):
            waited = None if i % 6 == 0 else now - timedelta(minutes=(i * 37) % 60)  # ties broken by the id
            rows.append(Ticket(customer_id=customer.id, status=statuses[i % len(statuses)], channel="rest",
                               team_id=teams[i % 3] if i % 10 else None,
                               assignee_id=agent[0].id if i % 4 == 0 else None,
                               created_at=now, updated_at=now, last_customer_message_at=waited))
        session.add_all(rows)
        await session.flush()
        await session.execute(update(Ticket).where(Ticket.id == rows[1].id).values(merged_into_id=rows[2].id))

    async with sessionmaker() as session:
        board = await reports.board(session, now=now, offline_after=timedelta(seconds=90))
        active = [TicketStatus.new, TicketStatus.open, TicketStatus.pending]
        unmerged = Ticket.merged_into_id.is_(None)
        former_order = (Ticket.last_customer_message_at.is_(None), Ticket.last_customer_message_at, Ticket.id)
        by_status = dict((await session.execute(select(Ticket.status, func.count()).where(
            Ticket.status.in_([*active, TicketStatus.bot]), unmerged).group_by(Ticket.status))).all())
        per_team = {t: (int(n), int(w)) for t, n, w in (await session.execute(select(
            Ticket.team_id, func.count(), func.sum(case((Ticket.assignee_id.is_(None), 1), else_=0))).where(
            Ticket.status.in_(active), unmerged).group_by(Ticket.team_id))).all()}
        load = await session.scalar(select(func.count()).where(
            Ticket.status.in_(active), unmerged, Ticket.assignee_id == agent[0].id))
        longest = (await session.scalars(select(Ticket.id).where(Ticket.status.in_(active), unmerged)
                                         .order_by(*former_order).limit(100))).all()
        oldest = {}
        for team in teams:
            oldest[team] = await session.scalar(select(Ticket.id).where(
                Ticket.status.in_(active), unmerged, Ticket.assignee_id.is_(None), Ticket.team_id == team)
                .order_by(*former_order).limit(1))

    assert board.by_status == {str(s): n for s, n in by_status.items()}
    assert {q.team.id: (q.open_count, q.waiting) for q in board.queues if q.team.id in teams} == {
        t: per_team.get(t, (0, 0)) for t in teams}
    assert {a.user.id: a.open_count for a in board.agents}[agent[0].id] == load
    assert [t.id for t in board.tickets] == list(longest)
    assert {q.team.id: q.oldest.id if q.oldest else None for q in board.queues if q.team.id in teams} == oldest
    assert all(q.oldest is None or q.oldest.customer.name == "C" for q in board.queues)  # loaded with the ticket
