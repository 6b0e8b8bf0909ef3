from __future__ import annotations

from fastapi import APIRouter, Path, Response

from api.deps import Agent, DbSession
from api.keys import OrdersWriter
from core.orders import service
from core.orders.schemas import OrderRead, OrderStatusUpdate, OrderUpsert

router = APIRouter(prefix="/orders", tags=["orders"])
OrderNumber = Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")


@router.put("/{number}", response_model=OrderRead,
            responses={201: {"description": "A new order was created", "model": OrderRead}})
async def upsert(body: OrderUpsert, session: DbSession, caller: OrdersWriter, response: Response,
                 number: str = OrderNumber) -> OrderRead:
    """Create or update an order (for the operator's order system: a supervisor, or a key with orders:write)."""
    order, created = await service.put(session, number, body, caller.user, via_key=caller.key_name)
    response.status_code = 201 if created else 200
    return OrderRead.model_validate(order)


@router.post("/{number}/status", response_model=OrderRead)
async def update_status(body: OrderStatusUpdate, session: DbSession, caller: OrdersWriter,
                        number: str = OrderNumber) -> OrderRead:
    return OrderRead.model_validate(await service.set_status(session, number, body, caller.user,
                                                             via_key=caller.key_name))


@router.get("/{number}", response_model=OrderRead)
async def get_order(session: DbSession, _user: Agent, number: str = OrderNumber) -> OrderRead:
    return OrderRead.model_validate(await service.get_by_number(session, number))
