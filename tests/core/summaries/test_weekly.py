"""The weekly summary e-mail on both databases, with a ManualClock and a real SMTP server (aiosmtpd): off by
default (nothing sent), sent once per recipient and week across two instances, never twice after a restart, in
each recipient's language with the week's right numbers against the week before."""

from __future__ import annotations

import email
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import Message as Mail
from email.policy import default as default_policy
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from channels.email.settings import EmailChannelSettings, SmtpSettings, StaffMailSettings
from channels.email.staff import SmtpStaffMailer
from core.clock import ManualClock
from core.customers.models import ChannelIdentity, Customer
from core.jobs import JobRegistry
from core.jobs import service as tasks
from core.jobs.models import ScheduledTask, TaskState
from core.jobs.tasks import DueTaskRunner, TaskHandlers
from core.kpis.fold import KpiFold
from core.summaries import service
from core.summaries.job import MAIL_JOB, WeeklySummary
from core.summaries.models import MailStatus, SummaryMail
from core.summaries.settings import SummarySettings
from core.tickets import repository as ticket_repo
from core.tickets.models import AuthorKind, Direction, Message, Ticket, TicketStatus
from core.users.models import Role, User
from tests.channels.email.conftest import SmtpSink, smtp_sink  # noqa: F401  (the aiosmtpd server fixture)
from tests.support.waiting import until, wait_for

# Monday 30 November 2026, 07:00 in Moscow (04:00 UTC): the summary of 23-29 November is due at 08:00.
START = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
SETTINGS = SummarySettings(console_url="https://sb.example/", poll_seconds=30)
WEEK = date(2026, 11, 23)


def mailer(sink: SmtpSink) -> SmtpStaffMailer:
    return SmtpStaffMailer(EmailChannelSettings(
        smtp=SmtpSettings(host=sink.host, port=sink.port, security="none", timeout_seconds=5),
        staff=StaffMailSettings(from_address="reports@sb.example", from_name="Switchboard")))


@dataclass
class Instance:
    """One app instance's part in it: its own registry, due-task runner and summary job."""

    registry: JobRegistry
    runner: DueTaskRunner
    summary: WeeklySummary

    async def stop(self) -> None:
        await self.registry.stop()


def start_instance(db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], clock: ManualClock,
                   sink: SmtpSink, name: str) -> Instance:
    handlers = TaskHandlers()
    send = mailer(sink)
    summary = WeeklySummary(SETTINGS, send, send.message_id_domain(), clock, runner_id=name)
    summary.register(handlers)
    runner = DueTaskRunner(sessionmaker, handlers, clock=clock, runner_id=name)
    registry = JobRegistry(clock, engine=db_engine)
    registry.start(runner.job(interval=5))
    registry.start(summary.job(sessionmaker))
    return Instance(registry, runner, summary)


@pytest.fixture
async def two_instances(db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession],
                        smtp_sink: SmtpSink) -> AsyncIterator[tuple[list[Instance], ManualClock]]:  # noqa: F811
    clock = ManualClock(START)
    instances = [start_instance(db_engine, sessionmaker, clock, smtp_sink, f"instance-{n}") for n in (1, 2)]
    try:
        yield instances, clock
    finally:
        for instance in instances:
            await instance.stop()


async def people(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, User]:
    """Recipients: a Russian-speaking supervisor and an English-speaking admin; not: an agent, a former supervisor."""
    made = {
        "ru": User(email="olga@sb.example", name="Ольга", password_hash="x", role=Role.supervisor, language="ru"),
        "en": User(email="adam@sb.example", name="Adam", password_hash="x", role=Role.admin, language="en"),
        "agent": User(email="ann@sb.example", name="Ann", password_hash="x", role=Role.agent, language="en"),
        "gone": User(email="gone@sb.example", name="Gone", password_hash="x", role=Role.supervisor, language="en",
                     is_active=False),
    }
    async with sessionmaker() as session, session.begin():
        session.add_all(made.values())
    return made


async def a_ticket(session: AsyncSession, created: datetime, *, resolved_after: timedelta | None = None,
                   first_response_after: timedelta | None = None) -> None:
    customer = Customer(name="C", language="en")
    identity = ChannelIdentity(channel="rest", external_id=f"c-{created.timestamp()}", customer=customer,
                               verified=False)
    team = await ticket_repo.get_team_by_slug(session, "billing")
    resolved_at = created + resolved_after if resolved_after is not None else None
    row = Ticket(
        subject="s", channel="rest", status=TicketStatus.resolved if resolved_at else TicketStatus.open,
        customer=customer, identity=identity, team_id=team.id if team else None, failed_bot_answers=0,
        language="en", created_at=created, updated_at=created, resolved_at=resolved_at,
        first_response_at=created + first_response_after if first_response_after is not None else None)
    session.add_all([customer, identity, row])
    await session.flush()
    # The customer's message: what the KPI fold notices a ticket by.
    session.add(Message(ticket_id=row.id, direction=Direction.inbound, author_kind=AuthorKind.customer,
                        channel="rest", text="hello", created_at=created))


async def two_weeks(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The week before (16-22 Nov): 2 tickets, 1 resolved in 1 h. The week (23-29 Nov): 4 tickets, 3 resolved in
    1, 2 and 3 h (median 2 h), first responses after 10, 20 and 30 minutes (median 20 min)."""
    noon = timedelta(hours=9)  # 12:00 in Moscow
    async with sessionmaker() as session, session.begin():
        before = datetime(2026, 11, 17, tzinfo=UTC) + noon
        await a_ticket(session, before, resolved_after=timedelta(hours=1), first_response_after=timedelta(minutes=5))
        await a_ticket(session, before + timedelta(days=1))
        week = datetime(2026, 11, 24, tzinfo=UTC) + noon
        for n in (1, 2, 3):
            await a_ticket(session, week + timedelta(days=n), resolved_after=timedelta(hours=n),
                           first_response_after=timedelta(minutes=10 * n))
        await a_ticket(session, week)
    # The KPI aggregates as the app's fold job keeps them (every few seconds) by the time the summary is due.
    kpi_fold = KpiFold(sessionmaker, ManualClock(START), time_zone="Europe/Moscow")
    while await kpi_fold.run_once():
        pass


async def sent_to(sink: SmtpSink, count: int) -> dict[str, Mail]:
    await wait_for(lambda: len(sink.messages) >= count, f"{count} mails at the SMTP server")
    out: dict[str, Mail] = {}
    for _sender, recipients, raw in sink.messages:
        assert len(recipients) == 1
        out.setdefault(recipients[0], email.message_from_bytes(raw, policy=default_policy))  # type: ignore[arg-type]
    return out


def body(message: Mail, subtype: str) -> str:
    part = message.get_body((subtype,))  # type: ignore[attr-defined]
    assert part is not None
    content: Any = part.get_content()
    return str(content)


async def weekly_tasks(sessionmaker: async_sessionmaker[AsyncSession]) -> list[tuple[str, TaskState]]:
    async with sessionmaker() as session:
        rows = (await session.scalars(select(ScheduledTask).where(ScheduledTask.kind == service.SUMMARY_TASK)
                                      .order_by(ScheduledTask.due_at))).all()
    return [(r.key, r.state) for r in rows]


async def mail_rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[SummaryMail]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(SummaryMail).order_by(SummaryMail.address))).all())


async def switch_on(sessionmaker: async_sessionmaker[AsyncSession], admin: User) -> None:
    async with sessionmaker() as session, session.begin():
        actor = await session.get(User, admin.id)
        assert actor is not None
        assert await service.set_enabled(session, True, actor, START) is True


async def runs(instances: list[Instance], job: str) -> list[int]:
    return [instance.registry.health()[job]["runs"] for instance in instances]


async def pass_time(clock: ManualClock, instances: list[Instance], seconds: float) -> None:
    """Move the clock and wait until every job of every instance has had its turn after it."""
    before = {id(i): (await runs([i], "due-tasks"))[0] + (await runs([i], MAIL_JOB))[0] for i in instances}
    clock.advance(seconds)
    for instance in instances:
        await until(lambda i=instance: sum([i.registry.health()[j]["runs"] for j in ("due-tasks", MAIL_JOB)])
                    >= before[id(i)] + 2, "both jobs ran after the clock moved")
    await until(lambda: clock.sleepers >= 2 * len(instances), "every job asleep again")


async def test_the_schedule_names_a_week_and_a_send_time_in_the_time_zone() -> None:
    monday_7 = START
    due = service.next_run(SETTINGS, monday_7)
    assert due == datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # 08:00 in Moscow
    assert service.next_run(SETTINGS, due) == due + timedelta(days=7)
    assert service.task_key(due, SETTINGS) == "send:2026-11-30"
    assert service.week_reported(due, SETTINGS) == WEEK
    friday = SummarySettings(weekday="fri", at="17:30", time_zone="Asia/Vladivostok")
    assert service.next_run(friday, START) == datetime(2026, 12, 4, 7, 30, tzinfo=UTC)
    assert service.week_reported(datetime(2026, 12, 4, 7, 30, tzinfo=UTC), friday) == WEEK


async def test_off_by_default_nothing_is_sent_and_the_next_week_is_armed(
        two_instances: tuple[list[Instance], ManualClock], sessionmaker: async_sessionmaker[AsyncSession],
        smtp_sink: SmtpSink) -> None:  # noqa: F811
    instances, clock = two_instances
    await people(sessionmaker)
    await two_weeks(sessionmaker)
    await until(lambda: clock.sleepers >= 4, "both instances started")
    assert await weekly_tasks(sessionmaker) == [("send:2026-11-30", TaskState.pending)]
    async with sessionmaker() as session:
        assert await service.is_enabled(session) is False
    await pass_time(clock, instances, 3600)
    assert await weekly_tasks(sessionmaker) == [("send:2026-11-30", TaskState.done),
                                                ("send:2026-12-07", TaskState.pending)]
    await pass_time(clock, instances, 60)
    assert await mail_rows(sessionmaker) == []
    assert smtp_sink.messages == []


async def test_sent_once_per_recipient_across_two_instances_and_not_again_after_a_restart(
        two_instances: tuple[list[Instance], ManualClock], db_engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession], smtp_sink: SmtpSink) -> None:  # noqa: F811
    instances, clock = two_instances
    made = await people(sessionmaker)
    await two_weeks(sessionmaker)
    await switch_on(sessionmaker, made["en"])
    await until(lambda: clock.sleepers >= 4, "both instances started")
    await pass_time(clock, instances, 3600)  # 08:00: the task fires (on one instance) and queues two mails
    await pass_time(clock, instances, SETTINGS.poll_seconds)
    mails = await sent_to(smtp_sink, 2)
    assert sorted(mails) == ["adam@sb.example", "olga@sb.example"]
    assert len(smtp_sink.messages) == 2
    rows = await mail_rows(sessionmaker)
    assert [(r.address, r.status, r.attempts, r.week_start) for r in rows] == [
        ("adam@sb.example", MailStatus.sent, 1, WEEK), ("olga@sb.example", MailStatus.sent, 1, WEEK)]
    assert sum(i.runner.stats.fired for i in instances) == 1

    # A restart of both instances at the same moment: the week's task is done and its mails are sent.
    for instance in instances:
        await instance.stop()
    instances[:] = [start_instance(db_engine, sessionmaker, clock, smtp_sink, f"restarted-{n}") for n in (1, 2)]
    await until(lambda: clock.sleepers >= 4, "both instances started again")
    await pass_time(clock, instances, SETTINGS.poll_seconds)
    await pass_time(clock, instances, 3600)
    assert len(smtp_sink.messages) == 2
    assert await weekly_tasks(sessionmaker) == [("send:2026-11-30", TaskState.done),
                                                ("send:2026-12-07", TaskState.pending)]

    # The next Monday: one more mail each, about the week of 30 November.
    await pass_time(clock, instances, 7 * 86400 - 3600 - 2 * SETTINGS.poll_seconds)
    await pass_time(clock, instances, SETTINGS.poll_seconds)
    await wait_for(lambda: len(smtp_sink.messages) == 4, "the second week's mails")
    rows = await mail_rows(sessionmaker)
    assert sorted((r.address, r.week_start) for r in rows) == sorted(
        [(a, w) for a in ("adam@sb.example", "olga@sb.example") for w in (WEEK, WEEK + timedelta(days=7))])
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(SummaryMail)
                                    .where(SummaryMail.status != MailStatus.sent)) == 0


async def test_each_recipient_reads_the_weeks_numbers_in_their_language(
        two_instances: tuple[list[Instance], ManualClock], sessionmaker: async_sessionmaker[AsyncSession],
        smtp_sink: SmtpSink) -> None:  # noqa: F811
    instances, clock = two_instances
    made = await people(sessionmaker)
    await two_weeks(sessionmaker)
    await switch_on(sessionmaker, made["en"])
    await until(lambda: clock.sleepers >= 4, "both instances started")
    await pass_time(clock, instances, 3600)
    await pass_time(clock, instances, SETTINGS.poll_seconds)
    mails = await sent_to(smtp_sink, 2)

    en = mails["adam@sb.example"]
    assert en["Subject"] == "Switchboard weekly summary 2026-11-23 – 2026-11-29: 4 tickets"
    assert en["From"] == "Switchboard <reports@sb.example>"
    assert en["Message-ID"] == f"<sb.summary.2026-11-23.{made['en'].id}@sb.example>"
    assert en["Auto-Submitted"] == "auto-generated" and en["Content-Language"] == "en"
    text = body(en, "plain")
    assert "Hello Adam," in text
    assert "Tickets: 4 (week before: 2, +100\u00a0%)" in text
    assert "Resolved: 3 (week before: 1, +200\u00a0%)" in text
    assert "First response, median: 20 min (week before: 5 min, +300\u00a0%)" in text
    assert "Resolution, median: 2 h 00 min (week before: 1 h 00 min, +100\u00a0%)" in text
    assert "Backlog: 2 (week before: 1, +100\u00a0%)" in text  # open at the end: one of each week
    assert "First-contact resolution: 100.0\u00a0% (week before: 100.0\u00a0%, ±0.0 pp)" in text
    assert "SLA first response met: — (week before: —)" in text  # no SLA policy: nothing to rate
    assert "https://sb.example/console/reports?from=2026-11-23&to=2026-11-29&group_by=day" in text
    html = body(en, "html")
    assert 'href="https://sb.example/console/reports?from=2026-11-23&amp;to=2026-11-29&amp;group_by=day"' in html
    assert ">4</td>" in html and ">2 h 00 min</td>" in html

    ru = mails["olga@sb.example"]
    assert ru["Subject"] == "Еженедельная сводка Switchboard 23.11.2026 – 29.11.2026: 4 обращения"
    text = body(ru, "plain")
    assert "Здравствуйте, Ольга!" in text
    assert "Обращения: 4 (неделей ранее: 2, +100\u00a0%)" in text
    assert "Решение, медиана: 2 ч 00 мин (неделей ранее: 1 ч 00 мин, +100\u00a0%)" in text
    assert "Первый ответ, медиана: 20 мин (неделей ранее: 5 мин, +300\u00a0%)" in text


async def test_a_refused_address_fails_for_good_and_a_down_server_is_retried(
        sessionmaker: async_sessionmaker[AsyncSession], smtp_sink: SmtpSink) -> None:  # noqa: F811
    made = await people(sessionmaker)
    await switch_on(sessionmaker, made["en"])
    clock = ManualClock(START + timedelta(hours=1))
    send = mailer(smtp_sink)
    summary = WeeklySummary(SETTINGS, send, send.message_id_domain(), clock, runner_id="solo")
    handlers = TaskHandlers()
    summary.register(handlers)
    async with sessionmaker() as session, session.begin():
        await tasks.schedule(session, service.SUMMARY_TASK, "send:2026-11-30", START + timedelta(hours=1))
    assert await DueTaskRunner(sessionmaker, handlers, clock=clock).run_once() == 1
    smtp_sink.refuse.add("olga@sb.example")
    smtp_sink.defer.add("adam@sb.example")
    assert await summary.send_due(sessionmaker) == 2
    rows = {r.address: r for r in await mail_rows(sessionmaker)}
    assert rows["olga@sb.example"].status == MailStatus.failed and "550" in (rows["olga@sb.example"].last_error or "")
    adam = rows["adam@sb.example"]
    assert adam.status == MailStatus.queued and adam.attempts == 1 and "451" in (adam.last_error or "")
    assert adam.next_attempt_at == clock.now() + timedelta(seconds=SETTINGS.retry_seconds)
    assert await summary.send_due(sessionmaker) == 0  # not due yet
    smtp_sink.defer.clear()
    clock.advance(SETTINGS.retry_seconds)
    assert await summary.send_due(sessionmaker) == 1
    rows = {r.address: r for r in await mail_rows(sessionmaker)}
    assert rows["adam@sb.example"].status == MailStatus.sent and rows["adam@sb.example"].attempts == 2
    assert [r for _, r, _ in smtp_sink.messages] == [["adam@sb.example"]]
