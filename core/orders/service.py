"""Orders pushed by the operator's order system (eTOM Order Handling)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core.audit import service as audit
from core.customers.models import ChannelIdentity, Customer
from core.db.base import utcnow
from core.errors import NotFoundError
from core.orders.models import Order, OrderStatusChange
from core.users.models import User


async def get_by_number(session: AsyncSession, number: str) -> Order:
    stmt = select(Order).where(Order.number == number).options(selectinload(Order.history))
    order = (await session.scalars(stmt)).first()
    if order is None:
        raise NotFoundError(f"order {number} not found")
    return order


async def find_customer(session: AsyncSession, *, customer_id: int | None, email: str | None,
                        phone: str | None) -> int | None:
    if customer_id is not None:
        if await session.get(Customer, customer_id) is None:
            raise NotFoundError(f"customer {customer_id} not found")
        return customer_id
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


async def upsert(
    session: AsyncSession, *, number: str, status: str, description: str | None, customer_id: int | None,
    note: str = "", actor: User | None = None,
) -> tuple[Order, bool]:
    """Create or update an order by its number; every status change is kept in the history."""
    stmt = select(Order).where(Order.number == number).options(selectinload(Order.history))
    order = (await session.scalars(stmt)).first()
    created = order is None
    now = utcnow()
    if order is None:
        order = Order(number=number, status=status, description=description or "", customer_id=customer_id,
                      created_at=now, updated_at=now)
        order.history = []
        session.add(order)
        await session.flush()
        order.history.append(OrderStatusChange(order_id=order.id, status=status, note=note, changed_at=now))
    else:
        if description is not None:
            order.description = description
        if customer_id is not None:
            order.customer_id = customer_id
        if order.status != status:
            order.status = status
            order.history.append(OrderStatusChange(order_id=order.id, status=status, note=note, changed_at=now))
        order.updated_at = now
    await session.flush()
    audit.record(session, actor, "order.upsert", "order", order.number, status=status, created=created)
    return order, created


async def for_customer(session: AsyncSession, customer_id: int) -> Sequence[Order]:
    stmt = (select(Order).where(Order.customer_id == customer_id).order_by(Order.id.desc())
            .options(selectinload(Order.history)))
    return (await session.scalars(stmt)).all()
