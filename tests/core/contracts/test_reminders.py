"""Contract expiry reminders: armed at the configured offsets, fired once each across restarts and runners, in the
customer's language through their channel, paused under termination, skipped with the reason for erased customers
and withdrawn consent, held back by quiet hours."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.clock import ManualClock
from core.config import CoreSettings
from core.contracts import service as contracts
from core.contracts.models import ContractStatus
from core.contracts.repository import REMINDER, reminder_key
from core.contracts.schemas import ContractUpsert
from core.customers.models import Customer
from core.jobs.models import ScheduledTask, TaskState
from core.jobs.tasks import DueTaskRunner, TaskHandlers
from core.orders.schemas import OrderCustomerRef
from core.outbox.models import OutboxMessage
from core.tickets.models import Message, Ticket
from tests.core.sla.helpers import ticket

# Never quiet, reminders at 10:00 UTC: the arithmetic of the tests stays plain.
SETTINGS = CoreSettings(notice_time_zone="UTC", notice_quiet_from="00:00", notice_quiet_until="00:00",
                        contract_reminder_time="10:00")
START = datetime(2027, 1, 1, 8, 0, tzinfo=UTC)
END = date(2027, 3, 1)


def body(customer_id: int, **fields: object) -> ContractUpsert:
    return ContractUpsert.model_validate({"customer": OrderCustomerRef(id=customer_id), "tariff": "Home 100",
                                          "start_date": date(2026, 3, 1), "end_date": END, **fields})


async def customer_with_ticket(sessionmaker: async_sessionmaker[AsyncSession], language: str = "ru",
                               channel: str = "telegram") -> int:
    async with sessionmaker() as s, s.begin():
        row = await ticket(s, language=language, channel=channel)
        return row.customer_id


async def put(sessionmaker: async_sessionmaker[AsyncSession], number: str, customer_id: int, now: datetime,
              settings: CoreSettings = SETTINGS, **fields: object) -> None:
    async with sessionmaker() as s, s.begin():
        await contracts.put(s, number, body(customer_id, **fields), actor=None, via_key=None, settings=settings,
                            now=now)


def runner(sessionmaker: async_sessionmaker[AsyncSession], clock: ManualClock, runner_id: str = "r1",
           settings: CoreSettings = SETTINGS) -> DueTaskRunner:
    handlers = TaskHandlers()
    contracts.ContractReminders(settings, clock).register(handlers)
    return DueTaskRunner(sessionmaker, handlers, clock=clock, runner_id=runner_id)


async def drain(r: DueTaskRunner) -> None:
    while await r.run_once():
        pass


async def sent_texts(sessionmaker: async_sessionmaker[AsyncSession], customer_id: int) -> list[str]:
    async with sessionmaker() as s:
        rows = await s.execute(select(Message.text).join(OutboxMessage, OutboxMessage.message_id == Message.id)
                               .join(Ticket, Ticket.id == Message.ticket_id)
                               .where(Ticket.customer_id == customer_id).order_by(OutboxMessage.id))
        return [r[0] for r in rows]


async def audit(sessionmaker: async_sessionmaker[AsyncSession], action: str) -> list[dict[str, object]]:
    async with sessionmaker() as s:
        rows = (await s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))).all()
        return [dict(r.data) for r in rows]


async def test_reminders_are_armed_at_each_offset_and_fire_once_in_the_customers_language(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    customer_id = await customer_with_ticket(sessionmaker, language="ru")
    await put(sessionmaker, "12345678", customer_id, START)
    async with sessionmaker() as s:
        due = sorted(t.due_at for t in (await s.scalars(
            select(ScheduledTask).where(ScheduledTask.kind == REMINDER))).all())
    assert due == sorted(datetime(2027, 3, 1, 10, tzinfo=UTC) - timedelta(days=n) for n in (30, 7, 1))

    clock = ManualClock(datetime(2027, 1, 30, 10, 0, tzinfo=UTC))  # the 30-day reminder is due
    await drain(runner(sessionmaker, clock))
    texts = await sent_texts(sessionmaker, customer_id)
    assert len(texts) == 1
    assert "12345678" in texts[0] and "01.03.2027" in texts[0] and "30 дней" in texts[0] and "Home 100" in texts[0]

    # The order system pushes the same contract again: a fired reminder stays fired.
    await put(sessionmaker, "12345678", customer_id, clock.now())
    await drain(runner(sessionmaker, clock, "restarted"))
    assert len(await sent_texts(sessionmaker, customer_id)) == 1

    clock.advance(timedelta(days=29).total_seconds())  # past the 7- and 1-day reminders
    await drain(runner(sessionmaker, clock))
    texts = await sent_texts(sessionmaker, customer_id)
    assert len(texts) == 3 and "1 день" in texts[2]
    sent = await audit(sessionmaker, "contract.reminder_sent")
    assert [e["days"] for e in sent] == [30, 7, 1] and {e["channel"] for e in sent} == {"telegram"}


async def test_past_offsets_are_not_armed_and_a_moved_end_date_rearms(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    customer_id = await customer_with_ticket(sessionmaker, language="en")
    now = datetime(2027, 2, 25, 8, 0, tzinfo=UTC)  # 4 days before the end: only the 1-day reminder is ahead
    await put(sessionmaker, "CN-1", customer_id, now)
    async with sessionmaker() as s:
        keys = sorted((await s.scalars(select(ScheduledTask.key).where(ScheduledTask.kind == REMINDER))).all())
    assert keys == [reminder_key(1, 1)]
    await put(sessionmaker, "CN-1", customer_id, now, end_date=date(2027, 6, 1))  # renewed: all three again
    async with sessionmaker() as s:
        tasks = (await s.scalars(select(ScheduledTask).where(ScheduledTask.kind == REMINDER))).all()
    assert sorted(t.due_at for t in tasks) == sorted(
        datetime(2027, 6, 1, 10, tzinfo=UTC) - timedelta(days=n) for n in (30, 7, 1))
    assert {t.payload["end_date"] for t in tasks} == {"2027-06-01"}


async def test_termination_pauses_reminders_and_a_return_to_active_resumes_them(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    customer_id = await customer_with_ticket(sessionmaker)
    await put(sessionmaker, "T-1", customer_id, START)
    await put(sessionmaker, "T-1", customer_id, START, status=ContractStatus.terminating)
    async with sessionmaker() as s:
        assert (await s.scalars(select(ScheduledTask).where(ScheduledTask.kind == REMINDER))).all() == []
    clock = ManualClock(datetime(2027, 2, 28, 10, tzinfo=UTC))
    await drain(runner(sessionmaker, clock))
    assert await sent_texts(sessionmaker, customer_id) == []
    await put(sessionmaker, "T-1", customer_id, datetime(2027, 2, 25, tzinfo=UTC), status=ContractStatus.active)
    await drain(runner(sessionmaker, clock))
    assert len(await sent_texts(sessionmaker, customer_id)) == 1  # the 1-day one, the only one still ahead


async def test_a_reminder_racing_a_termination_is_skipped_with_the_reason(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    customer_id = await customer_with_ticket(sessionmaker)
    await put(sessionmaker, "R-1", customer_id, START)
    async with sessionmaker() as s, s.begin():  # terminated behind the service's back (the task stays armed)
        contract = await contracts.get_by_number(s, "R-1")
        contract.status = ContractStatus.terminated
    await drain(runner(sessionmaker, ManualClock(datetime(2027, 1, 30, 10, tzinfo=UTC))))
    assert await sent_texts(sessionmaker, customer_id) == []
    assert await audit(sessionmaker, "contract.reminder_skipped") == [{"days": 30, "reason": "status_terminated"}]


@pytest.mark.parametrize("change", ["erased", "no_consent"])
async def test_erased_customers_and_withdrawn_consent_get_no_reminder(
        sessionmaker: async_sessionmaker[AsyncSession], change: str) -> None:
    customer_id = await customer_with_ticket(sessionmaker)
    await put(sessionmaker, "E-1", customer_id, START)
    async with sessionmaker() as s, s.begin():
        customer = await s.get(Customer, customer_id)
        assert customer is not None
        if change == "erased":
            customer.erased_at = START
        else:
            customer.consent_notices = False
    clock = ManualClock(datetime(2027, 1, 30, 10, tzinfo=UTC))
    await drain(runner(sessionmaker, clock))
    assert await sent_texts(sessionmaker, customer_id) == []
    assert await audit(sessionmaker, "contract.reminder_skipped") == [{"days": 30, "reason": change}]
    async with sessionmaker() as s:
        task = await s.scalar(select(ScheduledTask).where(ScheduledTask.key == reminder_key(1, 30)))
    assert task is not None and task.state == TaskState.done  # decided once, not retried


async def test_quiet_hours_hold_a_reminder_until_they_end(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    customer_id = await customer_with_ticket(sessionmaker)
    async with sessionmaker() as s, s.begin():
        customer = await s.get(Customer, customer_id)
        assert customer is not None
        customer.quiet_from, customer.quiet_until, customer.time_zone = "09:00", "12:00", "UTC"
    await put(sessionmaker, "Q-1", customer_id, START)
    clock = ManualClock(datetime(2027, 1, 30, 10, tzinfo=UTC))
    await drain(runner(sessionmaker, clock))
    assert await sent_texts(sessionmaker, customer_id) == []
    async with sessionmaker() as s:
        task = await s.scalar(select(ScheduledTask).where(ScheduledTask.key == reminder_key(1, 30)))
    assert task is not None and task.state == TaskState.pending and task.due_at == datetime(2027, 1, 30, 12,
                                                                                            tzinfo=UTC)
    clock.advance(2 * 3600)
    await drain(runner(sessionmaker, clock))
    assert len(await sent_texts(sessionmaker, customer_id)) == 1


@pytest.mark.postgres
async def test_two_runners_send_each_reminder_once(db_url: str, sessionmaker: async_sessionmaker[AsyncSession]
                                                   ) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("several instances share PostgreSQL; SQLite serves one process")
    customers = [await customer_with_ticket(sessionmaker, language="en") for _ in range(20)]
    for i, customer_id in enumerate(customers):
        await put(sessionmaker, f"P-{i}", customer_id, START)
    clock = ManualClock(datetime(2027, 3, 1, 9, tzinfo=UTC))  # all three offsets of every contract are due
    runners = [runner(sessionmaker, clock, f"instance-{n}") for n in range(2)]
    for r in runners:
        r.batch_size = 7
    await asyncio.gather(*(drain(r) for r in runners))
    sent = await audit(sessionmaker, "contract.reminder_sent")
    assert len(sent) == 60 and sum(r.stats.fired for r in runners) == 60
    async with sessionmaker() as s:
        assert await s.scalar(select(OutboxMessage.id).limit(1)) is not None
        count = len((await s.scalars(select(OutboxMessage.id))).all())
    assert count == 60
