"""All order queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core.consent.models import OrderNoticeTemplate
from core.customers.models import ChannelIdentity, Customer
from core.orders.models import Order, OrderStatusChange


async def get_by_number(session: AsyncSession, number: str) -> Order | None:
    stmt = select(Order).where(Order.number == number).options(selectinload(Order.history))
    return (await session.scalars(stmt)).first()


async def superseded(session: AsyncSession, order_id: int, change_id: int) -> bool:
    """Whether a later change of the order moved it to a status customers are told of (not marked internal)."""
    internal = select(OrderNoticeTemplate.status).where(OrderNoticeTemplate.internal.is_(True))
    later = (select(OrderStatusChange.id)
             .where(OrderStatusChange.order_id == order_id, OrderStatusChange.id > change_id,
                    OrderStatusChange.status.not_in(internal)))
    return bool(await session.scalar(select(exists(later))))


async def customer_exists(session: AsyncSession, customer_id: int) -> bool:
    return await session.get(Customer, customer_id) is not None


async def find_customer_id(session: AsyncSession, *, email: str | None, phone: str | None) -> int | None:
    """The oldest unmerged customer with this email (their own or an identity's) or phone."""
    conds = []
    if email:
        conds += [Customer.email == email, Customer.id.in_(
            select(ChannelIdentity.customer_id).where(ChannelIdentity.external_id == email))]
    if phone:
        conds.append(Customer.phone == phone)
    if not conds:
        return None
    stmt = select(Customer.id).where(or_(*conds), Customer.merged_into_id.is_(None)).order_by(Customer.id).limit(1)
    return (await session.scalars(stmt)).first()


async def for_customer(session: AsyncSession, customer_id: int, *, limit: int | None = None,
                       with_history: bool = True) -> Sequence[Order]:
    """A customer's orders, newest first."""
    stmt = select(Order).where(Order.customer_id == customer_id).order_by(Order.id.desc()).limit(limit)
    if with_history:
        stmt = stmt.options(selectinload(Order.history))
    return (await session.scalars(stmt)).all()


async def move_to_customer(session: AsyncSession, source_id: int, target_id: int) -> None:
    await session.execute(update(Order).where(Order.customer_id == source_id).values(customer_id=target_id))
