"""Bot-ticket lifecycle: a ticket the bot answered is resolved by the bot after the quiet time, once, and only if
nothing happened since; the customer writing again within the reopen window continues it with the bot."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.bot_lifecycle.service import BOT_RESOLVE, resolve_quiet_ticket
from core.clock import ManualClock
from core.db.base import utcnow
from core.jobs import repository as task_repo
from core.jobs import service as tasks
from core.jobs.models import TaskState
from core.jobs.tasks import DueTaskRunner, TaskHandlers
from core.models import Ticket, TicketStatus
from tests.core.ingest.test_threading import msg, svc

QUIET = timedelta(minutes=30)  # CoreSettings.bot_resolve_after_minutes' default


def runner(sessionmaker: async_sessionmaker[AsyncSession], after: timedelta, name: str = "a") -> DueTaskRunner:
    """A due-task runner whose clock stands `after` from now (the ingest stamps its timers with wall time)."""
    handlers = TaskHandlers()
    handlers.register(BOT_RESOLVE, resolve_quiet_ticket)
    return DueTaskRunner(sessionmaker, handlers, clock=ManualClock(utcnow() + after), runner_id=name)


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
    async with sessionmaker() as s:
        task = await tasks.get(s, BOT_RESOLVE, f"ticket:{answered.ticket_id}")
    assert task is not None and task.payload == {"ticket_id": answered.ticket_id,
                                                 "reply_id": answered.reply_message_ids[-1]}
    assert abs(task.due_at - (utcnow() + QUIET)) < timedelta(minutes=1)

    assert await runner(sessionmaker, QUIET - timedelta(minutes=1)).run_once() == 0  # not yet
    assert (await ticket(sessionmaker, answered.ticket_id)).status == TicketStatus.bot
    assert await runner(sessionmaker, QUIET + timedelta(minutes=1)).run_once() == 1
    resolved = await ticket(sessionmaker, answered.ticket_id)
    assert resolved.status == TicketStatus.resolved and resolved.resolved_by_bot and resolved.resolved_at
    assert await bot_resolutions(sessionmaker, answered.ticket_id) == 1


async def test_fires_once_across_a_restart(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    answered = await svc(sessionmaker).ingest(msg("1", text="hello"))
    # The first instance claims the timer and dies before firing it.
    async with sessionmaker() as s, s.begin():
        claimed = await task_repo.claim_due(s, "dead", utcnow() + QUIET + timedelta(minutes=1), 10, 120)
    assert len(claimed) == 1
    # While the dead instance's lease runs, nobody fires it; after it, the restarted instance fires it once.
    assert await runner(sessionmaker, QUIET + timedelta(minutes=2), "b").run_once() == 0
    assert await runner(sessionmaker, QUIET + timedelta(minutes=5), "b").run_once() == 1
    assert await runner(sessionmaker, QUIET + timedelta(minutes=10), "c").run_once() == 0
    assert await bot_resolutions(sessionmaker, answered.ticket_id) == 1


async def test_not_resolved_when_the_customer_wrote_again(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker)
    first = await s.ingest(msg("1", text="hello"))
    # A new answer moves the timer: the first due time passes without a resolution.
    await s.ingest(msg("2", text="what are your office hours"))
    async with sessionmaker() as session:
        task = await tasks.get(session, BOT_RESOLVE, f"ticket:{first.ticket_id}")
        count = await session.scalar(select(func.count()).select_from(type(task)))
    assert task is not None and count == 1
    # An auto-reply (stored, never answered) after the answer: something newer, so the quiet time did not pass.
    await s.ingest(msg("3", text="I am out of office", auto_reply=True))
    assert await runner(sessionmaker, QUIET + timedelta(minutes=1)).run_once() == 1
    assert (await ticket(sessionmaker, first.ticket_id)).status == TicketStatus.bot
    assert await bot_resolutions(sessionmaker, first.ticket_id) == 0


async def test_escalated_merged_or_deleted_tickets_are_dropped(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker)
    escalated = await s.ingest(msg("1", sender="a", text="hello"))
    await s.ingest(msg("2", sender="a", text="can I talk to an operator"))
    merged = await s.ingest(msg("3", sender="b", text="hello"))
    gone = await s.ingest(msg("4", sender="c", text="hello"))
    target = await s.ingest(msg("5", sender="b", text="hello", thread_key="other"))
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Ticket).where(Ticket.id == merged.ticket_id).values(
            merged_into_id=target.ticket_id, status=TicketStatus.closed))
        await session.execute(delete(Ticket).where(Ticket.id == gone.ticket_id))
    fired = runner(sessionmaker, QUIET + timedelta(minutes=1))
    assert await fired.run_once() == 4
    assert fired.stats.failed == 0 and fired.stats.retried == 0  # dropped cleanly, not errors
    assert (await ticket(sessionmaker, escalated.ticket_id)).status == TicketStatus.open
    assert (await ticket(sessionmaker, merged.ticket_id)).status == TicketStatus.closed
    assert (await ticket(sessionmaker, target.ticket_id)).status == TicketStatus.resolved
    async with sessionmaker() as session:
        states = {t.key: t.state for t in [await tasks.get(session, BOT_RESOLVE, f"ticket:{i}") for i in (
            escalated.ticket_id, merged.ticket_id, gone.ticket_id)] if t is not None}
    assert set(states.values()) == {TaskState.done} and len(states) == 3


async def test_customer_writing_within_the_window_continues_with_the_bot(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker)
    first = await s.ingest(msg("1", text="hello"))
    await runner(sessionmaker, QUIET + timedelta(minutes=1)).run_once()
    again = await s.ingest(msg("2", text="what are your office hours"))
    assert again.ticket_id == first.ticket_id and again.action == "answer"
    reopened = await ticket(sessionmaker, first.ticket_id)
    assert reopened.status == TicketStatus.bot and not reopened.resolved_by_bot
    # Resolved by the bot again, then a hand-over request: the same ticket goes to the queue.
    await runner(sessionmaker, QUIET + timedelta(minutes=2)).run_once()
    assert (await ticket(sessionmaker, first.ticket_id)).resolved_by_bot
    handed = await s.ingest(msg("3", text="operator please"))
    assert handed.ticket_id == first.ticket_id and handed.action == "escalate"
    assert (await ticket(sessionmaker, first.ticket_id)).status == TicketStatus.open


async def test_after_the_window_a_new_ticket(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker, window_hours=1)
    first = await s.ingest(msg("1", text="hello"))
    await runner(sessionmaker, QUIET + timedelta(minutes=1)).run_once()
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Ticket).where(Ticket.id == first.ticket_id).values(
            resolved_at=utcnow() - timedelta(hours=2)))
    later = await s.ingest(msg("2", text="what are your office hours"))
    assert later.ticket_id != first.ticket_id
    assert (await ticket(sessionmaker, first.ticket_id)).status == TicketStatus.resolved
