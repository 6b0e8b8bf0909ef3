"""SLA policies and ticket clocks on both databases: validation, business hours, pause, met, timers, drops."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.calendars import service as calendars
from core.calendars.schemas import CalendarUpdate
from core.clock import ManualClock
from core.errors import ConflictError, ValidationFailedError
from core.events import EventBus
from core.jobs import service as jobs
from core.jobs.models import TaskState
from core.jobs.tasks import DueTask, DueTaskRunner, TaskHandlers
from core.sla import service as sla
from core.sla.models import TicketSla
from core.sla.schemas import SlaPolicyUpdate
from core.sla.timers import SlaTimers
from core.tickets import service as tickets
from core.tickets.models import Direction, Message, Priority, Ticket, TicketStatus
from core.users.models import Role, User
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
        # Not recorded as met: a merged ticket has no SLA of its own any more.
        assert await sla.sla_of(session, merged_id) is None and d.sla_due_at is None
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
    start = clock.now()

    async def drain(runner: DueTaskRunner) -> None:
        while await runner.run_once():
            pass

    # One moment at a time (the first response warns at 8 min and is breached at 10, the resolution at 16 and
    # 20): every firing re-arms the ticket's timer for the next moment while the other runner claims and fires.
    expected = [("sla.warning", "first_response"), ("sla.breach", "first_response"), ("sla.warning", "resolution"),
                ("sla.breach", "resolution")]
    for step, minutes in enumerate((8.5, 10.5, 16.5, 20.5), start=1):
        clock.advance(minutes * 60 - (clock.now() - start).total_seconds())
        await asyncio.gather(drain(one), drain(two))
        for ticket_id in ids:
            assert await h.sla_history(sessionmaker, ticket_id) == expected[:step], (step, ticket_id)
    assert one.stats.fired + two.stats.fired == 4 * len(ids)
    assert one.stats.fired > 0 and two.stats.fired > 0


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


async def test_a_ticket_no_policy_matches_is_left_unmodified(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """A customer message on an open ticket no policy matches changes nothing on the ticket: assigning its due
    time again (None) would mark it modified, and every later flush of the ingest's session would walk it again."""
    async with sessionmaker() as session, session.begin():
        row = await h.ticket(session, status=TicketStatus.open)
        assert not session.dirty
        await sla.after_ingest(session, [row])
        assert row.sla_due_at is None
        assert row not in session.dirty
        await sla.track(session, row, rematch=True)
        assert row not in session.dirty


async def test_every_target_counts_from_its_own_start_and_pause_when_re_matched(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """A reopened ticket's resolution and a resumed next response keep their start and pause through a re-match
    (one count for start, re-match, reopen, resume and next response)."""
    t0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    async with sessionmaker() as session, session.begin():
        cal = await h.calendar(session)
        actor = await h.system_user(session)
        await h.policy(session, cal, name="standard", position=20, first_response_minutes=None,
                       resolution_minutes=60, next_response_minutes=30)
        await h.policy(session, cal, name="urgent", position=10, priorities=["urgent"], first_response_minutes=None,
                       resolution_minutes=120, next_response_minutes=60)
        # Reopened at t0+100: the resolution counts from then, under either policy.
        row = await h.ticket(session, status=TicketStatus.open)
        await sla.track(session, row, now=t0)
        tickets.transition(row, TicketStatus.resolved)
        await sla.track(session, row, now=t0 + timedelta(minutes=30))
        tickets.transition(row, TicketStatus.open)
        await sla.track(session, row, now=t0 + timedelta(minutes=100))
        clock = await session.get(TicketSla, row.id)
        assert clock is not None and clock.resolution_due_at == t0 + timedelta(minutes=160)
        await tickets.change_priority(session, row, Priority.urgent, actor, now=t0 + timedelta(minutes=101))
        assert clock.resolution_due_at == t0 + timedelta(minutes=220)
        assert clock.resolution_warn_at == t0 + timedelta(minutes=100 + 96)  # 80 % of 120 min from the reopening
        assert row.sla_due_at == clock.resolution_due_at
        # The next response from the customer's message at t0+10, paused 30 min: the pause survives a re-match.
        other = await h.ticket(session, status=TicketStatus.open)
        await sla.track(session, other, now=t0)
        await sla.track(session, other, replied=True, now=t0 + timedelta(minutes=5))
        await sla.after_ingest(session, [other], now=t0 + timedelta(minutes=10))
        tickets.transition(other, TicketStatus.pending)
        await sla.track(session, other, now=t0 + timedelta(minutes=20))
        tickets.transition(other, TicketStatus.open)
        await sla.track(session, other, now=t0 + timedelta(minutes=50))
        other_clock = await session.get(TicketSla, other.id)
        assert other_clock is not None and other_clock.next_response_due_at == t0 + timedelta(minutes=70)
        assert other_clock.resolution_due_at == t0 + timedelta(minutes=90)
        await tickets.change_priority(session, other, Priority.urgent, actor, now=t0 + timedelta(minutes=51))
        assert other_clock.next_response_due_at == t0 + timedelta(minutes=10 + 60 + 30)
        assert other_clock.resolution_due_at == t0 + timedelta(minutes=120 + 30)


async def test_a_message_that_moves_no_moment_keeps_a_failing_timer_s_backoff(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    async with sessionmaker() as session, session.begin():
        cal = await h.calendar(session)
        actor = await h.system_user(session)
        await h.policy(session, cal, first_response_minutes=10, resolution_minutes=None)
        row = await h.ticket(session)
        await h.escalate(session, row, actor)
        await sla.track(session, row, now=clock.now())
        ticket_id = row.id
    calls: list[str] = []

    async def failing(session: AsyncSession, task: DueTask) -> None:
        calls.append(task.key)
        raise RuntimeError("the SLA handler is broken")

    handlers = TaskHandlers()
    handlers.register(sla.TASK_KIND, failing, max_attempts=3)
    runner = DueTaskRunner(sessionmaker, handlers, clock=clock)
    clock.advance(9 * 60)
    assert await runner.run_once() == 1 and runner.stats.retried == 1
    async with sessionmaker() as session:
        task = await jobs.get(session, sla.TASK_KIND, sla.task_key(ticket_id))
        assert task is not None and task.attempts == 1 and task.due_at > clock.now()
        retry_at = task.due_at
    # The customer writes (the clock moves nothing): the task is left alone, not fired again at once.
    async with sessionmaker() as session, session.begin():
        ticket = await tickets.get(session, ticket_id)
        await sla.after_ingest(session, [ticket], now=clock.now())
    async with sessionmaker() as session:
        task = await jobs.get(session, sla.TASK_KIND, sla.task_key(ticket_id))
        assert task is not None and (task.attempts, task.due_at, task.state) == (1, retry_at, TaskState.pending)
    assert await runner.run_once() == 0 and calls == [sla.task_key(ticket_id)]


async def test_assigning_touches_the_sla_clock_only_when_the_status_moves(
        sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch) -> None:
    tracked: list[int] = []
    real_track = sla.track

    async def spy(session: AsyncSession, ticket: Ticket, **kwargs: object) -> None:
        tracked.append(ticket.id)
        await real_track(session, ticket, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sla, "track", spy)
    at = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    async with sessionmaker() as session, session.begin():
        cal = await h.calendar(session)
        actor = await h.system_user(session)
        await h.policy(session, cal)
        agent = User(email="agent@sla.example", name="Agent", password_hash="x", role=Role.agent, language="en",
                     capacity=10, is_active=True)
        session.add(agent)
        await session.flush()
        row = await h.ticket(session)
        await tickets.system_assign(session, row, agent, action="ticket.auto_assign", now=at)
        assert tracked == [row.id] and row.status == TicketStatus.open and row.assigned_at == at
        clock = await session.get(TicketSla, row.id)
        assert clock is not None and clock.started_at == at
        await tickets.take(session, row, actor, take_over=True)
        await tickets.assign(session, row, agent, actor)
        await tickets.system_assign(session, row, None, action="ticket.return")
        assert tracked == [row.id]  # already open: nothing SLA-relevant moved


async def test_sla_actions_go_through_the_ticket_service(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = ManualClock()
    async with sessionmaker() as session, session.begin():
        cal = await h.calendar(session)
        actor = await h.system_user(session)
        await h.policy(session, cal, first_response_minutes=10, resolution_minutes=None,
                       on_warning={"unassign": True, "raise_priority": True},
                       on_breach={"move_to_queue": "retention"})
        agent = User(email="holder@sla.example", name="Holder", password_hash="x", role=Role.agent,
                     language="en", capacity=10, is_active=True)
        session.add(agent)
        await session.flush()
        row = await h.ticket(session)
        await tickets.assign(session, row, agent, actor)
        await sla.track(session, row, now=clock.now())
        ticket_id, agent_id, actor_id = row.id, agent.id, actor.id
    handlers = TaskHandlers()
    SlaTimers(clock).register(handlers)
    bus = EventBus()
    seen: list[dict[str, object]] = []
    bus.forwarders.append(lambda _topic, payload: seen.append(payload))
    runner = DueTaskRunner(sessionmaker, handlers, clock=clock, bus=bus)
    clock.advance(8 * 60 + 5)
    assert await runner.run_once() == 1
    async with sessionmaker() as session:
        ticket = await tickets.get(session, ticket_id)
        assert ticket.assignee_id is None and ticket.assigned_at is None and ticket.priority == Priority.high
        assert ticket.updated_at == clock.now()
        history = (await session.scalars(select(AuditEntry).where(
            AuditEntry.entity_id == str(ticket_id), AuditEntry.action.in_(("ticket.assign", "ticket.priority")))
            .order_by(AuditEntry.id))).all()
        assert [(e.action, e.actor_user_id, e.data.get("by"), e.data.get("level")) for e in history[-2:]] == [
            ("ticket.priority", None, "sla", "warning"), ("ticket.assign", None, "sla", "warning")]
    assert any(p.get("kind") == "taken_over" and p.get("previous_assignee_id") == agent_id for p in seen)
    async with sessionmaker() as session, session.begin():  # someone takes it again before the breach
        ticket = await tickets.get(session, ticket_id)
        holder, supervisor = await session.get(User, agent_id), await session.get(User, actor_id)
        assert holder is not None and supervisor is not None
        await tickets.assign(session, ticket, holder, supervisor)
    clock.advance(2 * 60)
    assert await runner.run_once() == 1
    async with sessionmaker() as session:
        ticket = await tickets.get(session, ticket_id)
        assert ticket.team is not None and ticket.team.slug == "retention"
        assert ticket.assignee_id is None and ticket.assigned_at is None


async def test_policy_checks_load_no_calendar_exception_rows(db_engine: AsyncEngine,
                                                            sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    async with sessionmaker() as session, session.begin():
        cal = await h.calendar(session)
        event.listen(db_engine.sync_engine, "before_cursor_execute", count)
        try:
            await h.policy(session, cal)
            await calendars.update(session, cal, CalendarUpdate(name="renamed"), await h.system_user(session))
        finally:
            event.remove(db_engine.sync_engine, "before_cursor_execute", count)
    checks = [s for s in statements if "calendar_exceptions" in s]
    # The rename itself reads the calendar it changes (one load of its exceptions), the checks read none.
    assert len(checks) == 1, checks
