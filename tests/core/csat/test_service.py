"""CSAT surveys: sent once after the queue's delay when a person resolves a ticket, postponed by quiet hours,
never for bot-resolved, merged or reopened tickets; answered once, a low score flags the ticket."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.clock import ManualClock
from core.config import CoreSettings
from core.csat import schedule
from core.csat import service as csat
from core.csat.models import CsatSurvey
from core.csat.schedule import CSAT_SEND, QuietHours, task_key
from core.customers.models import Customer
from core.db.base import utcnow
from core.errors import ConflictError, NotFoundError, ValidationFailedError
from core.events import take_pending
from core.jobs import service as tasks
from core.jobs.models import TaskState
from core.jobs.tasks import DueTaskRunner, TaskHandlers
from core.outbox.models import OutboxMessage
from core.tickets import service as ticket_service
from core.tickets.models import Message, Ticket, TicketStatus
from core.users.models import Role, Team, User
from tests.core.sla.helpers import ticket

DELAY = timedelta(minutes=30)
NEVER_QUIET = CoreSettings(csat_quiet_from="00:00", csat_quiet_until="00:00", csat_time_zone="UTC")


def runner(sessionmaker: async_sessionmaker[AsyncSession], after: timedelta,
           settings: CoreSettings = NEVER_QUIET) -> DueTaskRunner:
    """A due-task runner whose clock stands `after` from now (tickets are resolved at wall time)."""
    clock = ManualClock(utcnow() + after)
    handlers = TaskHandlers()
    csat.CsatSurveys(settings, clock).register(handlers)
    return DueTaskRunner(sessionmaker, handlers, clock=clock, runner_id="csat")


async def enable(session: AsyncSession, slug: str = "billing", *, enabled: bool = True) -> None:
    await session.execute(update(Team).where(Team.slug == slug).values(
        csat_enabled=enabled, csat_delay_minutes=int(DELAY.total_seconds() // 60)))


async def agent(session: AsyncSession) -> User:
    user = await session.scalar(select(User).where(User.email == "agent@csat.example"))
    if user is None:
        user = User(email="agent@csat.example", name="Agent", password_hash="x", role=Role.agent, language="en",
                    capacity=10, is_active=True)
        session.add(user)
        await session.flush()
    return user


async def resolved_ticket(sessionmaker: async_sessionmaker[AsyncSession], *, enabled: bool = True,
                          language: str = "en") -> int:
    """A ticket of the billing queue that an agent resolved just now."""
    async with sessionmaker() as s, s.begin():
        await enable(s, enabled=enabled)
        row = await ticket(s, status=TicketStatus.open, language=language)
        await ticket_service.change_status(s, row, TicketStatus.resolved, await agent(s))
        take_pending(s)
        return row.id


async def surveys_sent(sessionmaker: async_sessionmaker[AsyncSession], ticket_id: int) -> list[OutboxMessage]:
    async with sessionmaker() as s:
        return list((await s.scalars(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket_id))).all())


async def test_survey_is_sent_once_after_the_queue_delay(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    ticket_id = await resolved_ticket(sessionmaker)
    async with sessionmaker() as s:
        task = await tasks.get(s, CSAT_SEND, task_key(ticket_id))
    assert task is not None and abs(task.due_at - (utcnow() + DELAY)) < timedelta(minutes=1)

    assert await runner(sessionmaker, DELAY - timedelta(minutes=1)).run_once() == 0
    assert await surveys_sent(sessionmaker, ticket_id) == []
    assert await runner(sessionmaker, DELAY + timedelta(minutes=1)).run_once() == 1
    assert await runner(sessionmaker, DELAY + timedelta(minutes=5)).run_once() == 0
    sent = await surveys_sent(sessionmaker, ticket_id)
    assert len(sent) == 1
    assert [q["payload"] for q in sent[0].payload["quick_replies"]] == [f"/csat {n}" for n in range(1, 6)]
    async with sessionmaker() as s:
        survey = (await s.scalars(select(CsatSurvey).where(CsatSurvey.ticket_id == ticket_id))).one()
        assert survey.channel == "rest" and survey.score is None


async def test_no_survey_for_a_customer_who_withdrew_consent_to_notices(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    ticket_id = await resolved_ticket(sessionmaker)
    async with sessionmaker() as s, s.begin():
        row = await s.get(Ticket, ticket_id)
        assert row is not None
        await s.execute(update(Customer).where(Customer.id == row.customer_id).values(consent_notices=False))
    assert await runner(sessionmaker, DELAY + timedelta(minutes=1)).run_once() == 1
    assert await surveys_sent(sessionmaker, ticket_id) == []
    async with sessionmaker() as s:
        entry = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "ticket.csat_skipped"))).one()
    assert entry.data == {"reason": "no_consent"}


async def test_survey_text_is_in_the_customer_language(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    texts = {}
    for language in ("ru", "en"):
        ticket_id = await resolved_ticket(sessionmaker, language=language)
        assert await runner(sessionmaker, DELAY + timedelta(minutes=1)).run_once() == 1
        async with sessionmaker() as s:
            message = await s.scalar(select(OutboxMessage.payload).where(OutboxMessage.ticket_id == ticket_id))
            assert message is not None and message["language"] == language
        async with sessionmaker() as s:
            texts[language] = await s.scalar(select(Message.text).where(Message.ticket_id == ticket_id))
    assert texts["ru"] is not None and "Оцените" in texts["ru"]
    assert texts["en"] is not None and "Rate it" in texts["en"]


async def test_quiet_hours_postpone_the_survey_to_their_end(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    ticket_id = await resolved_ticket(sessionmaker)
    fire_at = utcnow() + DELAY + timedelta(minutes=1)
    quiet_from = (fire_at - timedelta(hours=1)).time()
    quiet_until = (fire_at + timedelta(hours=2)).time()
    quiet = CoreSettings(csat_quiet_from=quiet_from.strftime("%H:%M"), csat_quiet_until=quiet_until.strftime("%H:%M"),
                         csat_time_zone="UTC")
    assert await runner(sessionmaker, DELAY + timedelta(minutes=1), quiet).run_once() == 1
    assert await surveys_sent(sessionmaker, ticket_id) == []
    async with sessionmaker() as s:
        task = await tasks.get(s, CSAT_SEND, task_key(ticket_id))
    assert task is not None and task.state == TaskState.pending
    expected_end = QuietHours(quiet_from.replace(second=0, microsecond=0),
                              quiet_until.replace(second=0, microsecond=0)).release(fire_at, ZoneInfo("UTC"))
    assert task.due_at == expected_end and expected_end > fire_at
    after = expected_end - utcnow() + timedelta(seconds=1)
    assert await runner(sessionmaker, after, quiet).run_once() == 1
    assert len(await surveys_sent(sessionmaker, ticket_id)) == 1


def test_quiet_hours_across_midnight_in_the_local_zone() -> None:
    quiet = QuietHours(time(22), time(9))
    moscow = ZoneInfo("Europe/Moscow")  # UTC+3
    late = datetime(2026, 11, 30, 20, 30, tzinfo=UTC)  # 23:30 in Moscow
    assert quiet.release(late, moscow) == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)  # 09:00 the next day
    early = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # 06:00 in Moscow
    assert quiet.release(early, moscow) == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    day = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # 15:00 in Moscow
    assert quiet.release(day, moscow) == day
    assert QuietHours(time(0), time(0)).release(late, moscow) == late


async def test_no_survey_for_a_queue_without_surveys(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    ticket_id = await resolved_ticket(sessionmaker, enabled=False)
    async with sessionmaker() as s:
        assert await tasks.get(s, CSAT_SEND, task_key(ticket_id)) is None


async def test_no_survey_for_a_ticket_reopened_before_the_due_time(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    ticket_id = await resolved_ticket(sessionmaker)
    async with sessionmaker() as s, s.begin():
        row = await ticket_service.get(s, ticket_id, lock=True)
        await ticket_service.change_status(s, row, TicketStatus.open, await agent(s))
        take_pending(s)
    async with sessionmaker() as s:
        assert await tasks.get(s, CSAT_SEND, task_key(ticket_id)) is None
    assert await runner(sessionmaker, DELAY + timedelta(minutes=1)).run_once() == 0
    assert await surveys_sent(sessionmaker, ticket_id) == []


async def test_a_task_for_a_reopened_merged_or_bot_resolved_ticket_is_dropped(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    reopened = await resolved_ticket(sessionmaker)
    by_bot = await resolved_ticket(sessionmaker)
    merged = await resolved_ticket(sessionmaker)
    async with sessionmaker() as s, s.begin():
        await s.execute(update(Ticket).where(Ticket.id == merged).values(merged_into_id=reopened))
        # Reopened by the customer writing (the ingest moves the status without the hook) and resolved by the bot.
        await s.execute(update(Ticket).where(Ticket.id == reopened).values(status=TicketStatus.open))
        await s.execute(update(Ticket).where(Ticket.id == by_bot).values(resolved_by_bot=True))
    assert await runner(sessionmaker, DELAY + timedelta(minutes=1)).run_once() == 3
    assert await surveys_sent(sessionmaker, reopened) == []
    assert await surveys_sent(sessionmaker, by_bot) == []
    assert await surveys_sent(sessionmaker, merged) == []


async def test_bot_resolved_ticket_arms_no_survey(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s, s.begin():
        await enable(s)
        row = await ticket(s, status=TicketStatus.bot)
        ticket_service.transition(row, TicketStatus.resolved)
        row.resolved_by_bot = True
        assert await schedule.arm(s, row) is False
        assert await tasks.get(s, CSAT_SEND, task_key(row.id)) is None


async def sent_survey(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    ticket_id = await resolved_ticket(sessionmaker)
    assert await runner(sessionmaker, DELAY + timedelta(minutes=1)).run_once() == 1
    return ticket_id


async def test_one_score_per_ticket_and_a_low_score_flags_it(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    ticket_id = await sent_survey(sessionmaker)
    async with sessionmaker() as s, s.begin():
        survey = await csat.submit(s, ticket_id, 2, "  slow answers  ", "rest", low_score=2)
        events = take_pending(s)
        assert survey.flagged and survey.comment == "slow answers"
    assert [p["kind"] for _, p in events] == ["csat_low"]
    async with sessionmaker() as s, s.begin():
        with pytest.raises(ConflictError, match="already rated") as raised:
            await csat.submit(s, ticket_id, 5, None, "rest", low_score=2)
        assert raised.value.details["reason"] == "already_rated"
    async with sessionmaker() as s:
        answer = await csat.answer_of(s, ticket_id)
        assert answer is not None and answer.score == 2 and answer.answer_channel == "rest"
        actions = (await s.scalars(select(AuditEntry.action).where(
            AuditEntry.entity_id == str(ticket_id), AuditEntry.action.like("ticket.csat%"))
            .order_by(AuditEntry.id))).all()
    assert actions == ["ticket.csat_sent", "ticket.csat", "ticket.csat_low"]


async def test_a_good_score_does_not_flag(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    ticket_id = await sent_survey(sessionmaker)
    async with sessionmaker() as s, s.begin():
        survey = await csat.submit(s, ticket_id, 4, "", "rest", low_score=2)
        assert not survey.flagged and survey.comment is None
        assert [p["kind"] for _, p in take_pending(s)] == ["csat"]


async def test_bad_answers_are_refused_with_the_reason(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    not_sent = await resolved_ticket(sessionmaker)
    async with sessionmaker() as s:
        for score in (0, 6, -1):
            with pytest.raises(ValidationFailedError):
                await csat.submit(s, not_sent, score, None, "rest", low_score=2)
        with pytest.raises(NotFoundError):
            await csat.submit(s, 10**9, 3, None, "rest", low_score=2)
        with pytest.raises(ConflictError) as raised:
            await csat.submit(s, not_sent, 3, None, "rest", low_score=2)
        assert raised.value.details["reason"] == "no_survey"
        assert await s.scalar(select(func.count()).select_from(CsatSurvey)) == 0


def test_survey_payloads_are_told_apart_in_one_place() -> None:
    assert csat.is_survey([q["payload"] for q in csat.quick_replies()])
    assert not csat.is_survey([]) and not csat.is_survey(["/csat 5", "/human_handoff"])
    assert [csat.survey_score(p) for p in ("/csat 3", "/csat_4", "/csat: 5", "/csat 6", "/csat ¹", "/csat", "5")] \
        == [3, 4, 5, None, None, None, None]
    assert csat.pressed_score({"csat": 2}) == 2
    assert csat.pressed_score({"csat": True}) is None and csat.pressed_score({"csat": "2"}) is None
