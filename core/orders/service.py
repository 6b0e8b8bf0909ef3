"""Orders pushed by the operator's order system (eTOM Order Handling)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.db.base import utcnow
from core.errors import NotFoundError
from core.orders import notices, repository
from core.orders.models import Order, OrderStatusChange
from core.orders.schemas import OrderStatusUpdate, OrderUpsert
from core.users.models import User


async def get_by_number(session: AsyncSession, number: str) -> Order:
    order = await repository.get_by_number(session, number)
    if order is None:
        raise NotFoundError(f"order {number} not found")
    return order


async def find_customer(session: AsyncSession, *, customer_id: int | None, email: str | None,
                        phone: str | None) -> int | None:
    if customer_id is not None:
        if not await repository.customer_exists(session, customer_id):
            raise NotFoundError(f"customer {customer_id} not found")
        return customer_id
    return await repository.find_customer_id(session, email=email, phone=phone)


async def upsert(
    session: AsyncSession, *, number: str, status: str, description: str | None, customer_id: int | None,
    note: str = "", actor: User | None = None, via_key: str | None = None,
) -> tuple[Order, bool]:
    """Create or update an order by its number; every status change is kept in the history."""
    order = await repository.get_by_number(session, number)
    created = order is None
    now = utcnow()
    changed: OrderStatusChange | None = None
    if order is None:
        order = Order(number=number, status=status, description=description or "", customer_id=customer_id,
                      created_at=now, updated_at=now)
        order.history = []
        session.add(order)
        await session.flush()
        # A new order's first status is no change: the customer placed it (admins can still tell them through
        # a later status).
        order.history.append(OrderStatusChange(order_id=order.id, status=status, note=note, changed_at=now))
    else:
        if description is not None:
            order.description = description
        if customer_id is not None:
            order.customer_id = customer_id
        if order.status != status:
            order.status = status
            change = OrderStatusChange(order_id=order.id, status=status, note=note, changed_at=now)
            order.history.append(change)
            changed = change
        order.updated_at = now
    await session.flush()
    if changed is not None:  # the customer hears of it (core/orders/notices.py), once per change
        await notices.arm(session, order, changed.id, status, now)
    audit.record(session, actor, "order.upsert", "order", order.number, status=status, created=created,
                 **({"api_key": via_key} if via_key else {}))
    return order, created


async def for_customer(session: AsyncSession, customer_id: int) -> Sequence[Order]:
    return await repository.for_customer(session, customer_id)


async def put(session: AsyncSession, number: str, body: OrderUpsert, actor: User | None, *,
              via_key: str | None = None) -> tuple[Order, bool]:
    """The order system's PUT: create or update by number, linked to the customer `body.customer` names.

    Returns:
        The order with its history, and whether it was created.
    """
    ref = body.customer
    customer_id = await find_customer(session, customer_id=ref.id if ref else None,
                                      email=ref.email if ref else None, phone=ref.phone if ref else None)
    order, created = await upsert(session, number=number, status=body.status, description=body.description,
                                  customer_id=customer_id, note=body.note, actor=actor, via_key=via_key)
    return await get_by_number(session, order.number), created


async def set_status(session: AsyncSession, number: str, body: OrderStatusUpdate, actor: User | None, *,
                     via_key: str | None = None) -> Order:
    """A status change of a known order (404 for an unknown number), kept in its history."""
    await get_by_number(session, number)
    await upsert(session, number=number, status=body.status, description=None, customer_id=None, note=body.note,
                 actor=actor, via_key=via_key)
    return await get_by_number(session, number)
