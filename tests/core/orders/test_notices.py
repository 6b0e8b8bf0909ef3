"""Order status notices: each change pushed by the order system tells the customer once, in their language and
channel, with the status's template; internal statuses, withdrawn consent and erased customers get none (the
reason is recorded); the order-number entity follows the configured pattern."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.clock import ManualClock
from core.config import CoreSettings
from core.customers.models import Customer
from core.jobs.tasks import DueTaskRunner, TaskHandlers
from core.orders import notices
from core.orders import service as orders
from core.orders.schemas import OrderCustomerRef, OrderStatusUpdate, OrderUpsert
from core.outbox.models import OutboxMessage
from core.tickets.models import Message, Ticket
from nlu import entities
from nlu.config import NluSettings
from tests.core.sla.helpers import ticket

NEVER_QUIET = CoreSettings(notice_time_zone="UTC", notice_quiet_from="00:00", notice_quiet_until="00:00")


async def customer(sessionmaker: async_sessionmaker[AsyncSession], language: str) -> int:
    async with sessionmaker() as s, s.begin():
        return (await ticket(s, language=language, channel="telegram")).customer_id


async def push(sessionmaker: async_sessionmaker[AsyncSession], number: str, status: str,
               customer_id: int | None = None) -> None:
    async with sessionmaker() as s, s.begin():
        if customer_id is not None:
            await orders.put(s, number, OrderUpsert(status=status, customer=OrderCustomerRef(id=customer_id)), None)
        else:
            await orders.set_status(s, number, OrderStatusUpdate(status=status), None)


async def fire(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    handlers = TaskHandlers()
    notices.OrderNotices(NEVER_QUIET, ManualClock(datetime.now(UTC))).register(handlers)
    runner = DueTaskRunner(sessionmaker, handlers, clock=ManualClock(datetime.now(UTC)))
    while await runner.run_once():
        pass


async def texts_to(sessionmaker: async_sessionmaker[AsyncSession], customer_id: int) -> list[str]:
    async with sessionmaker() as s:
        rows = await s.execute(select(Message.text).join(OutboxMessage, OutboxMessage.message_id == Message.id)
                               .join(Ticket, Ticket.id == Message.ticket_id)
                               .where(Ticket.customer_id == customer_id).order_by(OutboxMessage.id))
        return [r[0] for r in rows]


async def skipped(sessionmaker: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    async with sessionmaker() as s:
        rows = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "order.notice_skipped")
                                .order_by(AuditEntry.id))).all()
        return [(r.data["status"], r.data["reason"]) for r in rows]


async def test_each_status_change_is_told_once_with_its_template(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    anna = await customer(sessionmaker, "ru")
    async with sessionmaker() as s, s.begin():
        await notices.put_template(s, "shipped", internal=False, text_en="Order {order} left us.",
                                   text_ru="Заказ {order} отправлен: {status}.", actor=None,
                                   now=datetime.now(UTC))
        await notices.put_template(s, "picking", internal=True, text_en=None, text_ru=None, actor=None,
                                   now=datetime.now(UTC))
    await push(sessionmaker, "ORD-100001", "new", anna)  # placed: no change to tell
    await fire(sessionmaker)
    assert await texts_to(sessionmaker, anna) == []
    await push(sessionmaker, "ORD-100001", "picking")
    await push(sessionmaker, "ORD-100001", "shipped")
    await push(sessionmaker, "ORD-100001", "shipped")  # the same status again: no change
    await fire(sessionmaker)
    await push(sessionmaker, "ORD-100001", "delivered")
    await fire(sessionmaker)
    await fire(sessionmaker)  # a second runner pass (a restart) sends nothing again
    assert await texts_to(sessionmaker, anna) == ["Заказ ORD-100001 отправлен: отправлен.",
                                                  "Ваш заказ ORD-100001: доставлен."]
    assert await skipped(sessionmaker) == [("picking", "internal")]


async def test_a_status_the_order_has_moved_past_is_not_told(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Changes that come due together (pushed at once, held back by quiet hours or an outage): only the newest
    status reaches the customer, never an outdated one after it; a later internal status supersedes nothing."""
    anna = await customer(sessionmaker, "ru")
    async with sessionmaker() as s, s.begin():
        await notices.put_template(s, "picking", internal=True, text_en=None, text_ru=None, actor=None,
                                   now=datetime.now(UTC))
    await push(sessionmaker, "ORD-100003", "new", anna)
    await push(sessionmaker, "ORD-100003", "shipped")
    await push(sessionmaker, "ORD-100003", "delivered")
    await push(sessionmaker, "ORD-100003", "picking")  # internal: "delivered" is still the status to tell
    await fire(sessionmaker)
    assert await texts_to(sessionmaker, anna) == ["Ваш заказ ORD-100003: доставлен."]
    assert sorted(await skipped(sessionmaker)) == [("picking", "internal"), ("shipped", "superseded")]


@pytest.mark.parametrize("change", ["no_consent", "erased"])
async def test_opted_out_or_erased_customers_get_no_notice(sessionmaker: async_sessionmaker[AsyncSession],
                                                           change: str) -> None:
    bob = await customer(sessionmaker, "en")
    await push(sessionmaker, "ORD-100002", "new", bob)
    async with sessionmaker() as s, s.begin():
        row = await s.get(Customer, bob)
        assert row is not None
        if change == "erased":
            row.erased_at = datetime.now(UTC)
        else:
            row.consent_notices = False
    await push(sessionmaker, "ORD-100002", "shipped")
    await fire(sessionmaker)
    assert await texts_to(sessionmaker, bob) == []
    assert await skipped(sessionmaker) == [("shipped", change)]


async def test_templates_refuse_unknown_placeholders(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    from core.errors import ValidationFailedError

    async with sessionmaker() as s:
        with pytest.raises(ValidationFailedError, match="unknown placeholders"):
            await notices.put_template(s, "shipped", internal=False, text_en="Dear {name}", text_ru=None,
                                       actor=None, now=datetime.now(UTC))


@pytest.fixture
def order_pattern() -> Iterator[None]:
    entities.configure_order_pattern(NluSettings(order_number_pattern=r"ORD-\d{3,8}").order_number_pattern)
    yield
    entities.configure_order_pattern(None)


def test_the_order_number_follows_the_configured_pattern(order_pattern: None) -> None:
    found = entities.EntityExtractor().extract("where is my order ord-777? and ORD-123456")
    assert [(e.type, e.value) for e in found] == [("order_number", "ORD-777"), ("order_number", "ORD-123456")]


def test_without_a_pattern_only_six_digits_are_order_numbers() -> None:
    assert entities.EntityExtractor().extract("where is ORD-777") == ()
    with pytest.raises(ValueError, match="regular expression"):
        NluSettings(order_number_pattern="ORD-(")
    with pytest.raises(ValueError, match="empty"):
        NluSettings(order_number_pattern="x*")
