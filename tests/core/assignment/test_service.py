"""Automatic assignment on both databases, driven by a clock the test moves: who is eligible (presence, away,
queue, language, capacity), round robin and least loaded, returns of an offline agent's untouched tickets, and
the history and live events all of it leaves."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.assignment import service as assignment
from core.assignment.job import AssignmentRunner
from core.assignment.schemas import Presence, PresenceUpdate, QueueUpdate, QueueWarning
from core.audit.models import AuditEntry
from core.clock import ManualClock
from core.customers.models import Customer
from core.events import EventBus, Topic
from core.tickets import service as tickets
from core.tickets.models import AuthorKind, Direction, Message, Priority, Ticket, TicketStatus
from core.users import service as users
from core.users.models import AssignmentMode, Role, Team, User

OFFLINE = timedelta(seconds=90)


async def queue(sessionmaker: async_sessionmaker[AsyncSession], slug: str = "technical",
                mode: AssignmentMode = AssignmentMode.round_robin, return_after: int = 15) -> Team:
    async with sessionmaker() as session, session.begin():
        team = await users.team_by_slug(session, slug)
        team.assignment_mode = mode
        team.return_after_minutes = return_after
    return team


async def agent(sessionmaker: async_sessionmaker[AsyncSession], clock: ManualClock, name: str, *,
                capacity: int = 10, languages: list[str] | None = None, slug: str = "technical",
                online: bool = True, away: bool = False) -> User:
    async with sessionmaker() as session, session.begin():
        team = await users.team_by_slug(session, slug)
        user = await users.create(session, email=f"{name}@test.example", name=name, password="password-123",
                                  role=Role.agent, team=team, capacity=capacity, languages=languages)
        user.last_seen_at = clock.now() if online else None
        user.away = away
    return user


async def waiting(sessionmaker: async_sessionmaker[AsyncSession], clock: ManualClock, n: int, *,
                  slug: str = "technical", language: str | None = None, priority: Priority = Priority.normal
                  ) -> list[int]:
    """`n` escalated tickets waiting unassigned in the queue, oldest first."""
    ids = []
    async with sessionmaker() as session, session.begin():
        team = await users.team_by_slug(session, slug)
        for i in range(n):
            customer = Customer(name=f"c{i}", created_at=clock.now(), updated_at=clock.now())
            session.add(customer)
            await session.flush()
            ticket = Ticket(customer_id=customer.id, channel="rest", status=TicketStatus.open, team_id=team.id,
                            language=language, priority=priority, subject=f"s{i}",
                            created_at=clock.now() + timedelta(milliseconds=i), updated_at=clock.now())
            session.add(ticket)
            await session.flush()
            ids.append(ticket.id)
    return ids


async def holders(sessionmaker: async_sessionmaker[AsyncSession], ids: list[int]) -> list[int | None]:
    async with sessionmaker() as session:
        rows = (await session.execute(select(Ticket.id, Ticket.assignee_id).where(Ticket.id.in_(ids)))).all()
    by_id = dict(rows)
    return [by_id[i] for i in ids]


def runner(sessionmaker: async_sessionmaker[AsyncSession], clock: ManualClock, bus: EventBus | None = None,
           batch_size: int = 200) -> AssignmentRunner:
    return AssignmentRunner(sessionmaker, bus, clock, offline_after=OFFLINE, batch_size=batch_size)


async def test_round_robin_takes_turns_and_skips_the_offline_the_away_and_other_queues(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    await queue(sessionmaker)
    anna = await agent(sessionmaker, clock, "anna")
    boris = await agent(sessionmaker, clock, "boris")
    await agent(sessionmaker, clock, "olga", online=False)
    await agent(sessionmaker, clock, "pavel", away=True)
    await agent(sessionmaker, clock, "sara", slug="billing")
    ids = await waiting(sessionmaker, clock, 5)

    await runner(sessionmaker, clock).run_once()

    assert await holders(sessionmaker, ids) == [anna.id, boris.id, anna.id, boris.id, anna.id]
    # The pointer survives the run: the next ticket goes to the one after the last given one.
    more = await waiting(sessionmaker, clock, 1)
    await runner(sessionmaker, clock).run_once()
    assert await holders(sessionmaker, more) == [boris.id]


async def test_a_manual_queue_is_left_alone(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    await queue(sessionmaker, mode=AssignmentMode.manual)
    await agent(sessionmaker, clock, "anna")
    ids = await waiting(sessionmaker, clock, 2)
    await runner(sessionmaker, clock).run_once()
    assert await holders(sessionmaker, ids) == [None, None]


async def test_least_loaded_gives_to_the_fewest_open_then_the_longest_idle(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    await queue(sessionmaker, mode=AssignmentMode.least_loaded)
    anna = await agent(sessionmaker, clock, "anna")
    boris = await agent(sessionmaker, clock, "boris")
    held = await waiting(sessionmaker, clock, 2)
    async with sessionmaker() as session, session.begin():
        for ticket_id in held:  # anna already holds two
            ticket = await tickets.get(session, ticket_id)
            await tickets.assign(session, ticket, await users.get(session, anna.id),
                                 await users.get(session, anna.id))
    ids = await waiting(sessionmaker, clock, 4)
    await runner(sessionmaker, clock).run_once()
    # boris 0 -> 1 -> 2 (tie at 2 with anna: anna was never given one automatically, so she waited longest) ...
    assert await holders(sessionmaker, ids) == [boris.id, boris.id, anna.id, boris.id]


async def test_nobody_goes_over_capacity_and_the_rest_wait_in_the_queue_until_a_place_frees(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    await queue(sessionmaker, mode=AssignmentMode.least_loaded)
    anna = await agent(sessionmaker, clock, "anna", capacity=2)
    boris = await agent(sessionmaker, clock, "boris", capacity=1)
    await agent(sessionmaker, clock, "zero", capacity=0)
    ids = await waiting(sessionmaker, clock, 5)
    run = runner(sessionmaker, clock, batch_size=2)  # small batches: the run goes on while places are free
    while await run.run_once():
        pass
    got = await holders(sessionmaker, ids)
    assert got.count(anna.id) == 2 and got.count(boris.id) == 1 and got.count(None) == 2
    assert got[3:] == [None, None]  # the oldest were served first

    async with sessionmaker() as session, session.begin():
        first = await tickets.get(session, ids[0])
        actor = await users.get(session, first.assignee_id or 0)
        await tickets.change_status(session, first, TicketStatus.closed, actor)
    await run.run_once()
    assert (await holders(sessionmaker, [ids[3]]))[0] == actor.id
    assert (await holders(sessionmaker, [ids[4]]))[0] is None


async def test_urgent_tickets_go_first(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    await queue(sessionmaker)
    anna = await agent(sessionmaker, clock, "anna", capacity=1)
    normal = await waiting(sessionmaker, clock, 1)
    urgent = await waiting(sessionmaker, clock, 1, priority=Priority.urgent)
    await runner(sessionmaker, clock).run_once()
    assert await holders(sessionmaker, normal + urgent) == [None, anna.id]


async def test_tickets_go_to_agents_who_speak_their_language(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    await queue(sessionmaker)
    ru = await agent(sessionmaker, clock, "ru", languages=["ru"])
    en = await agent(sessionmaker, clock, "en", languages=["en"], capacity=1)
    russian = await waiting(sessionmaker, clock, 2, language="ru")
    english = await waiting(sessionmaker, clock, 2, language="en")
    german = await waiting(sessionmaker, clock, 1, language="de")
    unknown = await waiting(sessionmaker, clock, 1)
    await runner(sessionmaker, clock).run_once()
    assert await holders(sessionmaker, russian) == [ru.id, ru.id]
    assert await holders(sessionmaker, english) == [en.id, None]  # en is full; ru does not speak English
    assert await holders(sessionmaker, german) == [None]  # nobody speaks it: it waits, and blocks nobody
    assert await holders(sessionmaker, unknown) == [ru.id]  # no language: anyone


async def test_presence_follows_the_heartbeat_and_the_away_switch(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    await queue(sessionmaker)
    anna = await agent(sessionmaker, clock, "anna", online=False)
    ids = await waiting(sessionmaker, clock, 2)
    run = runner(sessionmaker, clock)

    async with sessionmaker() as session, session.begin():
        user = await users.get(session, anna.id)
        assert assignment.presence_of(user, clock.now(), OFFLINE) == Presence.offline
        assignment.heartbeat(user, clock.now())
        assignment.update_presence(session, user, PresenceUpdate(away=True))
        assert assignment.presence_of(user, clock.now(), OFFLINE) == Presence.away
    await run.run_once()
    assert await holders(sessionmaker, ids) == [None, None]  # away: no new work

    async with sessionmaker() as session, session.begin():
        user = await users.get(session, anna.id)
        assignment.update_presence(session, user, PresenceUpdate(away=False))
        assert assignment.presence_of(user, clock.now(), OFFLINE) == Presence.online
    clock.advance(OFFLINE.total_seconds() + 1)  # ... but the heartbeat stopped
    await run.run_once()
    assert await holders(sessionmaker, ids) == [None, None]
    async with sessionmaker() as session, session.begin():
        user = await users.get(session, anna.id)
        assert assignment.presence_of(user, clock.now(), OFFLINE) == Presence.offline
        assignment.heartbeat(user, clock.now())
    await run.run_once()
    assert await holders(sessionmaker, ids) == [anna.id, anna.id]


async def test_an_offline_agents_untouched_tickets_go_back_and_to_someone_online(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    await queue(sessionmaker, return_after=15)
    anna = await agent(sessionmaker, clock, "anna")
    ids = await waiting(sessionmaker, clock, 2)
    bus = EventBus()
    run = runner(sessionmaker, clock, bus)
    await run.run_once()
    assert await holders(sessionmaker, ids) == [anna.id, anna.id]
    async with sessionmaker() as session, session.begin():  # anna answered the first one
        session.add(Message(ticket_id=ids[0], direction=Direction.outbound, author_kind=AuthorKind.agent,
                            author_user_id=anna.id, channel="rest", text="on it", attachments=[], entities=[],
                            extra={}, created_at=clock.now() + timedelta(seconds=5)))

    # Anna closes her console: offline after 90 s, then the queue's 15 minutes; not a second earlier.
    clock.advance(OFFLINE.total_seconds() + 15 * 60 - 5)
    await run.run_once()
    assert await holders(sessionmaker, ids) == [anna.id, anna.id]
    boris = await agent(sessionmaker, clock, "boris")
    async with bus.subscribe(Topic.TICKETS) as events:
        clock.advance(10)
        await run.run_once()
        assert await holders(sessionmaker, ids) == [anna.id, boris.id]  # the answered one stays with her
        kinds = [events.get_nowait()[1]["kind"] for _ in range(events.qsize())]
    assert kinds == ["returned", "assigned"]
    assert (run.stats.returned, run.stats.assigned) == (1, 3)

    async with sessionmaker() as session:
        history = (await session.scalars(select(AuditEntry).where(
            AuditEntry.entity_type == "ticket", AuditEntry.entity_id == str(ids[1])).order_by(AuditEntry.id))).all()
    assert [(e.action, e.actor_user_id, e.data["old"], e.data["new"]) for e in history] == [
        ("ticket.auto_assign", None, None, anna.id), ("ticket.return", None, anna.id, None),
        ("ticket.auto_assign", None, None, boris.id)]
    assert history[1].data["minutes"] == 15 and history[0].data["mode"] == "round_robin"


async def test_an_away_agent_keeps_their_tickets(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    await queue(sessionmaker, return_after=1)
    anna = await agent(sessionmaker, clock, "anna")
    ids = await waiting(sessionmaker, clock, 1)
    run = runner(sessionmaker, clock)
    await run.run_once()
    for _ in range(5):  # away for five minutes, the console still open
        clock.advance(60)
        async with sessionmaker() as session, session.begin():
            user = await users.get(session, anna.id)
            user.away = True
            assignment.heartbeat(user, clock.now())
        await run.run_once()
    assert await holders(sessionmaker, ids) == [anna.id]


async def test_switching_a_queue_to_automatic_warns_when_nobody_can_take_its_tickets(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    async with sessionmaker() as session, session.begin():
        admin = await users.create(session, email="admin@test.example", name="admin", password="password-123",
                                   role=Role.admin)
        team = await users.team_by_slug(session, "sales")
        team, warnings = await assignment.update_queue(
            session, team, QueueUpdate(assignment_mode=AssignmentMode.least_loaded, return_after_minutes=30),
            admin, clock.now(), OFFLINE)
        assert warnings == [QueueWarning.no_agents]
        assert (team.assignment_mode, team.return_after_minutes) == (AssignmentMode.least_loaded, 30)
    await agent(sessionmaker, clock, "sam", slug="sales", online=False, capacity=0)
    async with sessionmaker() as session, session.begin():
        team = await users.team_by_slug(session, "sales")
        admin = await users.get(session, admin.id)
        _, warnings = await assignment.update_queue(session, team, QueueUpdate(), admin, clock.now(), OFFLINE)
        assert warnings == [QueueWarning.no_capacity]
    # Someone online without capacity and someone with capacity offline: nobody can take a ticket now.
    await agent(sessionmaker, clock, "tom", slug="sales", online=True, capacity=0)
    await agent(sessionmaker, clock, "ula", slug="sales", online=False, capacity=10)
    async with sessionmaker() as session, session.begin():
        team = await users.team_by_slug(session, "sales")
        admin = await users.get(session, admin.id)
        _, warnings = await assignment.update_queue(session, team, QueueUpdate(), admin, clock.now(), OFFLINE)
        assert warnings == [QueueWarning.none_online]
        manual = await users.team_by_slug(session, "billing")
        _, warnings = await assignment.update_queue(session, manual, QueueUpdate(name="Billing"), admin,
                                                    clock.now(), OFFLINE)
        assert warnings == []
    ids = await waiting(sessionmaker, clock, 1, slug="sales")
    await runner(sessionmaker, clock).run_once()  # never an error, never a stuck ticket: it waits in the queue
    assert await holders(sessionmaker, ids) == [None]
    async with sessionmaker() as session:
        row = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "team.update")
                                     .order_by(AuditEntry.id))).first()
    assert row is not None and row.data == {"assignment_mode": "least_loaded", "return_after_minutes": "30"}


async def test_overlapping_runs_without_the_lease_still_respect_capacity(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Two instances whose runs overlap (a lease handed over mid-run): the queue's and agents' row locks make the
    second count what the first gave."""
    if db_url.startswith("sqlite"):
        pytest.skip("one process serves SQLite: its runs never overlap")
    clock = ManualClock()
    await queue(sessionmaker, mode=AssignmentMode.least_loaded)
    team_agents = [await agent(sessionmaker, clock, f"a{i}", capacity=3) for i in range(3)]
    ids = await waiting(sessionmaker, clock, 30)
    runs = [runner(sessionmaker, clock, batch_size=2) for _ in range(4)]

    async def drain(run: AssignmentRunner) -> None:
        while await run.run_once():
            pass

    await asyncio.gather(*(drain(run) for run in runs))
    got = await holders(sessionmaker, ids)
    assert sorted(got.count(a.id) for a in team_agents) == [3, 3, 3]
    assert got.count(None) == 21
    assert sum(run.stats.assigned for run in runs) == 9


async def test_a_failing_queue_does_not_hold_up_the_others(sessionmaker: async_sessionmaker[AsyncSession],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock()
    for slug in ("technical", "sales"):
        async with sessionmaker() as session, session.begin():
            team = await users.team_by_slug(session, slug)
            team.assignment_mode = AssignmentMode.round_robin
    anna = await agent(sessionmaker, clock, "anna", slug="sales")
    ids = await waiting(sessionmaker, clock, 1, slug="sales")
    real = assignment.run_queue

    async def broken_technical(session: AsyncSession, team_id: int, *args: Any) -> assignment.RunResult:
        if team_id == (await users.team_by_slug(session, "technical")).id:
            raise RuntimeError("technical is broken")
        return await real(session, team_id, *args)

    monkeypatch.setattr(assignment, "run_queue", broken_technical)
    with pytest.raises(RuntimeError, match="technical is broken"):  # the job reports it (health, backoff)...
        await runner(sessionmaker, clock).run_once()
    assert await holders(sessionmaker, ids) == [anna.id]  # ...after the queues behind it had their run
