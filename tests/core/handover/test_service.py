"""Hand-over that never goes silent: the expected wait, "back at" out of hours, the waiting customer's notices."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.calendars import service as calendars
from core.calendars.business_time import BusinessCalendar
from core.calendars.schemas import CalendarCreate, CalendarExceptionIn, WeeklyHours
from core.db.base import utcnow
from core.decision import texts
from core.handover import service as handover
from core.models import Message, Order, Ticket, TicketStatus
from core.users.models import Team
from tests.core.ingest.test_threading import msg, svc

NINE_TO_SIX = ((9 * 60, 18 * 60),)


def queue(load: int = 1, agents: int = 1, recent: tuple[int, ...] = (), default: int = 15,
          calendar: BusinessCalendar | None = None) -> handover.QueueState:
    return handover.QueueState(open_unassigned=load, agents=agents,
                               recent_first_responses=tuple(timedelta(minutes=m) for m in recent),
                               default_wait=timedelta(minutes=default), calendar=calendar)


def test_expected_wait_from_history_and_load() -> None:
    assert handover.expected_wait(queue()) == timedelta(minutes=15)               # no history: the default
    assert handover.expected_wait(queue(recent=(4, 6))) == timedelta(minutes=15)  # too little history
    assert handover.expected_wait(queue(recent=(4, 6, 20, 8, 5))) == timedelta(minutes=6)  # the median
    assert handover.expected_wait(queue(load=5, agents=2, recent=(4, 6, 8))) == timedelta(minutes=18)  # 3 rounds
    assert handover.expected_wait(queue(load=3, agents=0)) == timedelta(minutes=45)  # nobody: as for one agent
    assert handover.expected_wait(queue(recent=(0, 0, 0))) == timedelta(minutes=1)  # never promises "now"


def test_wait_in_words_with_russian_plurals() -> None:
    ru = {n: texts.expected_wait(timedelta(minutes=n), "ru") for n in (1, 2, 5, 21, 59, 61, 180, 300)}
    assert ru[1] == "Ожидаемое время ответа: примерно 1 минута."
    assert ru[2].endswith("2 минуты.") and ru[5].endswith("5 минут.") and ru[21].endswith("21 минута.")
    assert ru[59].endswith("59 минут.") and ru[61].endswith("2 часа.") and ru[180].endswith("3 часа.")
    assert ru[300].endswith("5 часов.")
    assert texts.expected_wait(timedelta(minutes=1), "en") == "Expected wait: about 1 minute."
    assert texts.expected_wait(timedelta(hours=1), "en") == "Expected wait: about 1 hour."


def test_out_of_hours_says_when_the_team_is_back() -> None:
    office = BusinessCalendar(zone=ZoneInfo("Europe/Moscow"), weekly=(NINE_TO_SIX,) * 5 + ((), ()))
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert handover.wait_sentence(queue(calendar=office), saturday, "en") == \
        "Our team is not at work now; we are back at 09:00 (Mon)."
    assert handover.wait_sentence(queue(calendar=office), saturday, "ru") == \
        "Сейчас команда не работает; мы вернёмся в 09:00 (пн)."
    monday_noon_moscow = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert handover.wait_sentence(queue(calendar=office), monday_noon_moscow, "en").startswith("Expected wait")
    assert handover.wait_sentence(None, saturday, "en") == ""


async def team(sessionmaker: async_sessionmaker[AsyncSession], slug: str, **values: object) -> Team:
    async with sessionmaker() as s, s.begin():
        if values:
            await s.execute(update(Team).where(Team.slug == slug).values(**values))
        return (await s.scalars(select(Team).where(Team.slug == slug))).one()


async def replies(sessionmaker: async_sessionmaker[AsyncSession], ids: list[int]) -> list[str]:
    async with sessionmaker() as s:
        return list((await s.scalars(select(Message.text).where(Message.id.in_(ids)).order_by(Message.id))).all())


async def test_handover_quotes_the_queues_recent_first_responses(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    technical = await team(sessionmaker, "technical")
    now = utcnow()
    for minutes in (30, 40, 50):  # three answered tickets of the queue, median 40 minutes
        first = await svc(sessionmaker).ingest(msg(f"old{minutes}", sender=f"o{minutes}", text="internet"))
        async with sessionmaker() as s, s.begin():
            await s.execute(update(Ticket).where(Ticket.id == first.ticket_id).values(
                status=TicketStatus.resolved, created_at=now - timedelta(hours=3),
                first_response_at=now - timedelta(hours=3) + timedelta(minutes=minutes)))
    result = await svc(sessionmaker).ingest(msg("1", sender="new", text="my internet is down"))
    async with sessionmaker() as s:
        ticket = await s.get(Ticket, result.ticket_id)
    assert ticket is not None and ticket.team_id == technical.id
    [reply] = await replies(sessionmaker, result.reply_message_ids)
    assert ticket.number in reply and reply.endswith("Expected wait: about 40 minutes.")


async def test_handover_out_of_the_queues_hours(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    today = utcnow().date()
    closed = [CalendarExceptionIn(day=today + timedelta(days=d), hours=[]) for d in (-1, 0, 1)]
    async with sessionmaker() as s, s.begin():
        calendar = await calendars.create(s, CalendarCreate(
            name="Office", time_zone="UTC", weekly=WeeklyHours.model_validate(
                {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}),
            exceptions=closed), actor=None)
    await team(sessionmaker, "technical", calendar_id=calendar.id)
    result = await svc(sessionmaker).ingest(msg("1", text="интернет не работает"))
    [reply] = await replies(sessionmaker, result.reply_message_ids)
    back: date = today + timedelta(days=2)
    day = texts.translator("ru")(f"weekday.{texts.WEEKDAY_KEYS[back.weekday()]}")
    assert reply.endswith(f"мы вернёмся в 09:00 ({day}).")


async def test_waiting_customer_gets_a_notice_at_most_every_few_minutes(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker)
    handed = await s.ingest(msg("1", text="operator please"))
    assert handed.action == "escalate"
    again = await s.ingest(msg("2", text="operator!!"))  # right after the hand-over notice: quiet
    assert again.action == "agent" and again.reply_message_ids == []
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Ticket).where(Ticket.id == handed.ticket_id).values(
            waiting_notice_at=utcnow() - timedelta(minutes=11)))
    notice = await s.ingest(msg("3", text="where is the operator"))
    assert notice.action == "notify" and notice.ticket_id == handed.ticket_id
    [text] = await replies(sessionmaker, notice.reply_message_ids)
    async with sessionmaker() as session:
        ticket = await session.get(Ticket, handed.ticket_id)
    assert ticket is not None and ticket.status == TicketStatus.open
    assert text.startswith(f"Your request {ticket.number} is still with our team") and "Expected wait" in text
    assert (await s.ingest(msg("4", text="operator"))).action == "agent"   # throttled again
    assert (await s.ingest(msg("5", text="hello"))).action == "agent"      # anything else joins quietly
    # Once an agent has answered, the bot never speaks on the ticket.
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Ticket).where(Ticket.id == handed.ticket_id).values(
            waiting_notice_at=None, first_response_at=utcnow()))
    assert (await s.ingest(msg("6", text="operator"))).action == "agent"


async def test_self_service_while_waiting_where_the_queue_allows(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker)
    handed = await s.ingest(msg("1", text="operator please"))
    assert (await s.ingest(msg("2", text="where is my order"))).action == "agent"  # off by default
    await team(sessionmaker, "general", bot_answers_while_waiting=True)
    async with sessionmaker() as session, session.begin():
        session.add(Order(number="ORD-123456", status="shipped"))
    answered = await s.ingest(msg("3", text="where is my order ORD-123456"))
    assert answered.action == "notify"
    [text] = await replies(sessionmaker, answered.reply_message_ids)
    assert "ORD-123456" in text
    async with sessionmaker() as session:
        ticket = await session.get(Ticket, handed.ticket_id)
    assert ticket is not None and ticket.status == TicketStatus.open  # still with the team
