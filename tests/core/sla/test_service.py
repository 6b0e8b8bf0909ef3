"""SLA policies and ticket clocks on both databases: validation, business hours, pause, met, timers, drops."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.calendars import service as calendars
from core.clock import ManualClock
from core.errors import ConflictError, ValidationFailedError
from core.jobs import service as jobs
from core.jobs.models import TaskState
from core.jobs.tasks import DueTaskRunner, TaskHandlers
from core.sla import service as sla
from core.sla.models import TicketSla
from core.sla.schemas import SlaPolicyUpdate
from core.sla.timers import SlaTimers
from core.tickets import service as tickets
from core.tickets.models import Direction, Message, Priority, Ticket, TicketStatus
from tests.core.sla import helpers as h


def runner_for(sessionmaker: async_sessionmaker[AsyncSession], clock: ManualClock,
               runner_id: str | None = None) -> DueTaskRunner:
    handlers = TaskHandlers()
    SlaTimers(clock).register(handlers)
    return DueTaskRunner(sessionmaker, handlers, clock=clock, runner_id=runner_id)


@pytest.mark.parametrize(("fields", "reason"), [
    ({"first_response_minutes": -5}, "first_response_minutes must be a positive"),
    ({"first_response_minutes": 0}, "first_response_minutes must be a positive"),
    ({"resolution_minutes": 0}, "resolution_minutes must be a positive"),
    ({"first_response_minutes": None, "resolution_minutes": None}, "needs at least one target"),
    ({"warning_share": 1.0}, "warning_share must be strictly between 0 and 1"),
    ({"warning_share": 0}, "warning_share must be strictly between 0 and 1"),
    ({"calendar_id": 99999}, "calendar 99999 does not exist"),
    ({"queues": ["billing", "nope"]}, "unknown queue(s) in queues: nope"),
    ({"on_breach": {"move_to_queue": "ghost"}}, "unknown queue(s) in on_breach.move_to_queue: ghost"),
])
async def test_bad_policies_are_refused_with_the_reason(sessionmaker: async_sessionmaker[AsyncSession],
                                                        fields: dict[str, object], reason: str) -> None:
    async with sessionmaker() as session, session.begin():
        cal = await h.calendar(session)
        with pytest.raises(ValidationFailedError) as err:
            await h.policy(session, cal, **fields)
        assert reason in err.value.message


async def test_names_are_unique_and_a_calendar_in_use_cannot_be_deleted(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session, session.begin():
        cal = await h.calendar(session)
        other = await h.calendar(session, "unused")
        policy_id = await h.policy(session, cal)
        actor = await h.system_user(session)
        with pytest.raises(ConflictError):
            await h.policy(session, cal)
        with pytest.raises(ConflictError) as err:
            await calendars.delete(session, cal, actor)
        assert err.value.details["used_by"] == ["SLA policy standard"]
        await calendars.delete(session, other, actor)
        with pytest.raises(ValidationFailedError):
            await sla.update_policy(session, policy_id, SlaPolicyUpdate(warning_share=1.5), actor)
        await sla.delete_policy(session, policy_id, actor)
        await calendars.delete(session, cal, actor)


async def test_first_match_by_order_on_queue_priority_channel_and_intent(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session, session.begin():
        cal = await h.calendar(session)
        actor = await h.system_user(session)
        await h.policy(session, cal, name="catch-all", position=100)
        urgent = await h.policy(session, cal, name="urgent billing", position=10, queues=["billing"],
                                priorities=["urgent"], first_response_minutes=15)
        await h.policy(session, cal, name="telegram", position=20, channels=["telegram"], intents=["complaint"])
        row = await h.ticket(session, priority=Priority.urgent)
        await h.escalate(session, row, actor)
        read = await sla.sla_of(session, row.id)
        assert read is not None and read.policy == "urgent billing" and read.state == "ok"
        assert read.first_response_due_at is not None
        assert abs((read.first_response_due_at - row.created_at).total_seconds() - 15 * 60) < 60
        # A priority change re-matches: the catch-all now, counted from when the clock started.
        await tickets.change_priority(session, row, Priority.normal, actor)
        read = await sla.sla_of(session, row.id)
        assert read is not None and read.policy == "catch-all" and read.policy_id != urgent
        sla_row = await session.get(TicketSla, row.id)
        assert sla_row is not None and read.first_response_due_at == sla_row.started_at + timedelta(minutes=60)
        # Bot tickets carry no SLA.
        bot = await h.ticket(session, status=TicketStatus.bot)
        await tickets.change_priority(session, bot, Priority.high, actor)
        assert await sla.sla_of(session, bot.id) is None and bot.sla_due_at is None


async def test_due_times_count_business_hours_and_pending_pauses_the_clock(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    friday_5pm = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)  # a Friday
    async with sessionmaker() as session, session.begin():
        cal = await h.calendar(session, "office", h.WEEKDAYS_9_TO_18)
        actor = await h.system_user(session)
        await h.policy(session, cal, first_response_minutes=120, resolution_minutes=600)
        row = await h.ticket(session, status=TicketStatus.open)
        await sla.track(session, row, now=friday_5pm)
        clock = await session.get(TicketSla, row.id)
        assert clock is not None
        # 1 h on Friday, 1 h on Monday from 09:00.
        assert clock.first_response_due_at == datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
        assert clock.first_response_warn_at == datetime(2026, 12, 7, 9, 36, tzinfo=UTC)  # 80 % of 120 min
        assert clock.resolution_due_at == datetime(2026, 12, 7, 18, 0, tzinfo=UTC)
        assert row.sla_due_at == clock.first_response_due_at
        # Pending (waiting for the customer) Monday 09:30 to Tuesday 10:00: 9.5 business hours paused.
        tickets.transition(row, TicketStatus.pending)
        await sla.track(session, row, now=datetime(2026, 12, 7, 9, 30, tzinfo=UTC))
        assert clock.paused_at is not None and row.sla_due_at is None
        assert sla.state_of(clock, datetime(2026, 12, 7, 12, 0, tzinfo=UTC)) == "paused"
        assert await jobs.get(session, sla.TASK_KIND, sla.task_key(row.id)) is None
        tickets.transition(row, TicketStatus.open)
        await sla.track(session, row, now=datetime(2026, 12, 8, 10, 0, tzinfo=UTC))
        assert clock.paused_at is None and clock.paused_seconds == 9.5 * 3600
        assert clock.first_response_due_at == datetime(2026, 12, 8, 10, 30, tzinfo=UTC)
        task = await jobs.get(session, sla.TASK_KIND, sla.task_key(row.id))
        assert task is not None and task.due_at == clock.first_response_warn_at
        # The first agent reply meets the first response; resolving meets the resolution.
        await sla.track(session, row, replied=True, now=datetime(2026, 12, 8, 10, 5, tzinfo=UTC))
        assert clock.first_response_met_at == datetime(2026, 12, 8, 10, 5, tzinfo=UTC)
        assert row.sla_due_at == clock.resolution_due_at
        await tickets.change_status(session, row, TicketStatus.resolved, actor)
        assert clock.resolution_met_at is not None and sla.state_of(clock, clock.resolution_met_at) == "met"
        assert row.sla_due_at is None
        assert await jobs.get(session, sla.TASK_KIND, sla.task_key(row.id)) is None


async def test_next_response_runs_after_each_customer_message_while_with_humans(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    start = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    async with sessionmaker() as session, session.begin():
        cal = await h.calendar(session)
        await h.policy(session, cal, next_response_minutes=30)
        row = await h.ticket(session, status=TicketStatus.open)
        await sla.after_ingest(session, [row], now=start)
        clock = await session.get(TicketSla, row.id)
        assert clock is not None and clock.next_response_due_at is None  # the first response runs first
        await sla.track(session, row, replied=True, now=start + timedelta(minutes=5))
        await sla.after_ingest(session, [row], now=start + timedelta(minutes=10))
        assert clock.next_response_due_at == start + timedelta(minutes=40)
        await sla.after_ingest(session, [row], now=start + timedelta(minutes=20))  # still unanswered: unchanged
        assert clock.next_response_due_at == start + timedelta(minutes=40)
        await sla.track(session, row, replied=True, now=start + timedelta(minutes=25))
        assert clock.next_response_due_at is None
        # A reply that resolves at once meets the first response too.
        other = await h.ticket(session, status=TicketStatus.open)
        await sla.track(session, other, now=start)
        tickets.transition(other, TicketStatus.resolved)
        await sla.track(session, other, replied=True, now=start + timedelta(minutes=3))
        other_clock = await session.get(TicketSla, other.id)
        assert other_clock is not None and other_clock.first_response_met_at == start + timedelta(minutes=3)
        assert other_clock.resolution_met_at == start + timedelta(minutes=3)


async def test_timer_fires_warning_then_breach_once_with_history_actions_and_one_reminder(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    async with sessionmaker() as session, session.begin():
        cal = await h.calendar(session)
        actor = await h.system_user(session)
        await h.policy(session, cal, first_response_minutes=10, resolution_minutes=None,
                       on_warning={"raise_priority": True}, on_breach={"move_to_queue": "retention"})
        row = await h.ticket(session, language="ru")
        await h.escalate(session, row, actor)
        ticket_id = row.id
    runner = runner_for(sessionmaker, clock)
    assert await runner.run_once() == 0
    clock.advance(8 * 60 + 5)  # past 80 % of 10 minutes
    assert await runner.run_once() == 1
    assert await h.sla_history(sessionmaker, ticket_id) == [("sla.warning", "first_response")]
    async with sessionmaker() as session:
        row2 = await tickets.get(session, ticket_id)
        assert row2.priority == Priority.high
        read = await sla.sla_of(session, ticket_id, clock.now())
        assert read is not None and read.state == "warning"
        reminders = (await session.scalars(select(Message).where(
            Message.ticket_id == ticket_id, Message.direction == Direction.outbound))).all()
        assert len(reminders) == 1 and "T-" in reminders[0].text and "специалист" in reminders[0].text
        task = await jobs.get(session, sla.TASK_KIND, sla.task_key(ticket_id))
        assert task is not None and task.state == TaskState.pending  # re-armed for the breach
    assert await runner.run_once() == 0  # nothing twice
    clock.advance(2 * 60)
    assert await runner.run_once() == 1
    assert await h.sla_history(sessionmaker, ticket_id) == [("sla.warning", "first_response"),
                                                            ("sla.breach", "first_response")]
    async with sessionmaker() as session:
        row3 = await tickets.get(session, ticket_id)
        assert row3.team is not None and row3.team.slug == "retention" and row3.assignee_id is None
        read = await sla.sla_of(session, ticket_id, clock.now())
        assert read is not None and read.state == "breached" and read.breached == ["first_response"]
        assert read.remaining_seconds is not None and read.remaining_seconds < 0
        outbound = (await session.scalars(select(Message).where(
            Message.ticket_id == ticket_id, Message.direction == Direction.outbound))).all()
        assert len(outbound) == 1  # the reminder is once per ticket
    clock.advance(3600)
    assert await runner.run_once() == 0
    assert len(await h.sla_history(sessionmaker, ticket_id)) == 2


async def test_timers_of_a_deleted_policy_or_a_merged_ticket_are_dropped(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    async with sessionmaker() as session, session.begin():
        cal = await h.calendar(session)
        actor = await h.system_user(session)
        policy_id = await h.policy(session, cal, first_response_minutes=5)
        a = await h.ticket(session)
        await h.escalate(session, a, actor)
        b = await h.ticket(session)
        await h.escalate(session, b, actor)
        ids = (a.id, b.id)
    async with sessionmaker() as session, session.begin():
        # A timer armed by hand stands for one a runner had claimed before the policy went.
        await sla.delete_policy(session, policy_id, actor)
        await jobs.reschedule(session, sla.TASK_KIND, sla.task_key(ids[0]), clock.now())
        assert await session.get(TicketSla, ids[1]) is None
        second = await session.get(Ticket, ids[1])
        assert second is not None and second.sla_due_at is None
        assert await jobs.get(session, sla.TASK_KIND, sla.task_key(ids[1])) is None
    handlers = TaskHandlers()
    timers = SlaTimers(clock)
    timers.register(handlers)
    runner = DueTaskRunner(sessionmaker, handlers, clock=clock)
    clock.advance(3600)
    assert await runner.run_once() == 1
    assert timers.dropped == 1 and runner.stats.failed == 0 and runner.stats.retried == 0
    assert await h.sla_history(sessionmaker, ids[0]) == []
    # A merged ticket: closed, its clock met, its timer cancelled.
    async with sessionmaker() as session, session.begin():
        await h.policy(session, cal, name="again", first_response_minutes=5)
        c = await h.ticket(session)
        await h.escalate(session, c, actor)
        d = await tickets.get(session, c.id)
        target = await h.ticket(session)
        target.customer_id = d.customer_id
        await session.flush()
        await tickets.merge(session, d, target, actor)
        merged_id = d.id
        assert await jobs.get(session, sla.TASK_KIND, sla.task_key(merged_id)) is None
    clock.advance(3600)
    assert await runner.run_once() == 0
    assert await h.sla_history(sessionmaker, merged_id) == []


@pytest.mark.postgres
async def test_two_runners_fire_every_alert_exactly_once(db_url: str,
                                                         sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("two concurrent runners need PostgreSQL")
    clock = ManualClock()
    async with sessionmaker() as session, session.begin():
        cal = await h.calendar(session)
        actor = await h.system_user(session)
        await h.policy(session, cal, first_response_minutes=10, resolution_minutes=20)
        ids = []
        for _ in range(30):
            row = await h.ticket(session)
            await h.escalate(session, row, actor)
            ids.append(row.id)
    one, two = runner_for(sessionmaker, clock, "one"), runner_for(sessionmaker, clock, "two")
    one.batch_size = two.batch_size = 7
    clock.advance(3600)

    async def drain(runner: DueTaskRunner) -> None:
        while await runner.run_once():
            pass

    for _ in range(4):  # each round fires one moment per ticket: 2 warnings, 2 breaches
        await asyncio.gather(drain(one), drain(two))
    assert one.stats.fired > 0 and two.stats.fired > 0
    for ticket_id in ids:
        history = await h.sla_history(sessionmaker, ticket_id)
        assert sorted(history) == sorted([("sla.warning", "first_response"), ("sla.breach", "first_response"),
                                          ("sla.warning", "resolution"), ("sla.breach", "resolution")])


async def test_tickets_with_the_bot_cost_the_ingest_no_sla_query(db_engine: AsyncEngine,
                                                               sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    with_bot = [Ticket(id=i, status=status, channel="rest", priority=Priority.normal)
                for i, status in enumerate((TicketStatus.new, TicketStatus.bot, TicketStatus.bot), start=1)]
    event.listen(db_engine.sync_engine, "before_cursor_execute", count)
    try:
        async with sessionmaker() as session:
            await sla.after_ingest(session, with_bot)
            for row in with_bot:
                await sla.track(session, row, rematch=True)
    finally:
        event.remove(db_engine.sync_engine, "before_cursor_execute", count)
    assert statements == []
