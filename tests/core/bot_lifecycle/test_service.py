"""Bot-ticket lifecycle: a ticket the bot answered is resolved by the bot once the customer has been quiet for the
quiet time, once, and only if nothing happened since; the customer writing again within the reopen window
continues it with the bot."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.bot_lifecycle import service as bot_lifecycle
from core.bot_lifecycle.job import QuietTicketSweep
from core.clock import ManualClock
from core.db.base import utcnow
from core.events import EventBus, Topic
from core.models import Ticket, TicketStatus
from tests.core.ingest.test_threading import msg, svc

QUIET = timedelta(minutes=30)  # CoreSettings.bot_resolve_after_minutes' default


def sweep(sessionmaker: async_sessionmaker[AsyncSession], after: timedelta, bus: EventBus | None = None,
          batch_size: int = 500) -> QuietTicketSweep:
    """A sweep whose clock stands `after` from now (ingest stamps tickets with wall time)."""
    return QuietTicketSweep(sessionmaker, bus, ManualClock(utcnow() + after), quiet=QUIET, batch_size=batch_size)


async def ticket(sessionmaker: async_sessionmaker[AsyncSession], ticket_id: int) -> Ticket:
    async with sessionmaker() as s:
        row = await s.get(Ticket, ticket_id)
        assert row is not None
        return row


async def bot_resolutions(sessionmaker: async_sessionmaker[AsyncSession], ticket_id: int) -> int:
    async with sessionmaker() as s:
        return int(await s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "ticket.resolved_by_bot", AuditEntry.entity_id == str(ticket_id))) or 0)


async def test_answered_ticket_is_resolved_by_the_bot_after_the_quiet_time(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    answered = await svc(sessionmaker).ingest(msg("1", text="hello"))
    assert answered.action == "answer"
    assert await sweep(sessionmaker, QUIET - timedelta(minutes=1)).run_once() == 0  # not yet
    assert (await ticket(sessionmaker, answered.ticket_id)).status == TicketStatus.bot
    bus = EventBus()
    async with bus.subscribe(Topic.TICKETS) as events:
        assert await sweep(sessionmaker, QUIET + timedelta(minutes=1), bus).run_once() == 1
        changed = events.get_nowait()
    assert changed[1]["kind"] == "resolved_by_bot" and changed[1]["ticket_id"] == answered.ticket_id
    resolved = await ticket(sessionmaker, answered.ticket_id)
    assert resolved.status == TicketStatus.resolved and resolved.resolved_by_bot and resolved.resolved_at
    assert await bot_resolutions(sessionmaker, answered.ticket_id) == 1


async def test_resolved_once_however_often_and_from_wherever_it_sweeps(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker)
    ids = [(await s.ingest(msg(str(i), sender=f"c{i}", text="hello"))).ticket_id for i in range(5)]
    # Two instances (a restart is the same: the state is the ticket's), in batches of two: every ticket once.
    first, second = sweep(sessionmaker, QUIET + timedelta(minutes=1), batch_size=2), \
        sweep(sessionmaker, QUIET + timedelta(minutes=2), batch_size=2)
    assert await first.job(60).tick(None) is True  # type: ignore[arg-type]  # a full batch: go again at once
    assert [await second.run_once(), await first.run_once(), await second.run_once()] == [2, 1, 0]
    for ticket_id in ids:
        assert await bot_resolutions(sessionmaker, ticket_id) == 1


async def test_not_resolved_while_the_customer_keeps_writing(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker)
    first = await s.ingest(msg("1", text="hello"))
    async with sessionmaker() as session, session.begin():  # the first answer was long ago...
        await session.execute(update(Ticket).where(Ticket.id == first.ticket_id).values(
            updated_at=utcnow() - QUIET - timedelta(minutes=5)))
    await s.ingest(msg("2", text="what are your office hours"))  # ...but the customer wrote again just now
    assert await sweep(sessionmaker, timedelta(minutes=1)).run_once() == 0
    # An auto-reply is a message too: the quiet time runs from it.
    await s.ingest(msg("3", text="I am out of office", auto_reply=True))
    assert await sweep(sessionmaker, QUIET - timedelta(minutes=1)).run_once() == 0
    assert (await ticket(sessionmaker, first.ticket_id)).status == TicketStatus.bot
    assert await sweep(sessionmaker, QUIET + timedelta(minutes=1)).run_once() == 1


async def test_escalated_merged_or_deleted_tickets_are_left_alone(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker)
    escalated = await s.ingest(msg("1", sender="a", text="hello"))
    await s.ingest(msg("2", sender="a", text="can I talk to an operator"))
    merged = await s.ingest(msg("3", sender="b", text="hello"))
    gone = await s.ingest(msg("4", sender="c", text="hello"))
    target = await s.ingest(msg("5", sender="b", text="hello", thread_key="other"))
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Ticket).where(Ticket.id == merged.ticket_id).values(
            merged_into_id=target.ticket_id))
        await session.execute(delete(Ticket).where(Ticket.id == gone.ticket_id))
    assert await sweep(sessionmaker, QUIET + timedelta(minutes=1)).run_once() == 1
    assert (await ticket(sessionmaker, escalated.ticket_id)).status == TicketStatus.open
    assert (await ticket(sessionmaker, merged.ticket_id)).status == TicketStatus.bot  # merged: never resolved
    assert (await ticket(sessionmaker, target.ticket_id)).status == TicketStatus.resolved


async def test_customer_writing_within_the_window_continues_with_the_bot(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker)
    first = await s.ingest(msg("1", text="hello"))
    await sweep(sessionmaker, QUIET + timedelta(minutes=1)).run_once()
    again = await s.ingest(msg("2", text="what are your office hours"))
    assert again.ticket_id == first.ticket_id and again.action == "answer"
    reopened = await ticket(sessionmaker, first.ticket_id)
    assert reopened.status == TicketStatus.bot and not reopened.resolved_by_bot
    # Resolved by the bot again, then a hand-over request: the same ticket goes to the queue.
    await sweep(sessionmaker, QUIET + timedelta(minutes=2)).run_once()
    assert (await ticket(sessionmaker, first.ticket_id)).resolved_by_bot
    handed = await s.ingest(msg("3", text="operator please"))
    assert handed.ticket_id == first.ticket_id and handed.action == "escalate"
    assert (await ticket(sessionmaker, first.ticket_id)).status == TicketStatus.open


async def test_after_the_window_a_new_ticket(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker, window_hours=1)
    first = await s.ingest(msg("1", text="hello"))
    await sweep(sessionmaker, QUIET + timedelta(minutes=1)).run_once()
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Ticket).where(Ticket.id == first.ticket_id).values(
            resolved_at=utcnow() - timedelta(hours=2)))
    later = await s.ingest(msg("2", text="what are your office hours"))
    assert later.ticket_id != first.ticket_id
    assert (await ticket(sessionmaker, first.ticket_id)).status == TicketStatus.resolved


@pytest.mark.parametrize("limit", [1, 500])
async def test_the_service_resolves_at_most_its_limit(sessionmaker: async_sessionmaker[AsyncSession],
                                                      limit: int) -> None:
    s = svc(sessionmaker)
    for i in range(3):
        await s.ingest(msg(str(i), sender=f"c{i}", text="hello"))
    async with sessionmaker() as session, session.begin():
        done = await bot_lifecycle.resolve_quiet_tickets(session, utcnow() + QUIET + timedelta(minutes=1), QUIET,
                                                         limit)
    assert done == min(limit, 3)
