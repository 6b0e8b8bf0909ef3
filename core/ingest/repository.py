"""The ingest pipeline's own queries (the ones it shares with tickets and customers live in their repositories)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import bindparam, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from core.contracts.models import Contract
from core.db.lists import padded
from core.orders.models import Order
from core.tickets.models import Message

# Built once: building a statement costs more CPU than running it (see core/db/lists.py).
_KNOWN_MESSAGES = select(Message.channel, Message.external_message_id).where(
    tuple_(Message.channel, Message.external_message_id).in_(bindparam("keys", expanding=True)))


async def known_messages(session: AsyncSession, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (channel, external message id) keys are stored already: one query for a batch."""
    rows = (await session.execute(_KNOWN_MESSAGES, {"keys": padded(keys)})).all()
    return {(channel, external_id) for channel, external_id in rows if external_id is not None}


async def reply_ids(session: AsyncSession, message_id: int) -> list[int]:
    """The ids of the messages answering `message_id`, oldest first."""
    return list((await session.scalars(
        select(Message.id).where(Message.in_reply_to_id == message_id).order_by(Message.id)
    )).all())


async def contracts_for(session: AsyncSession, numbers: Collection[str], customer_ids: Collection[int]
                        ) -> Sequence[Contract]:
    """The contracts with these numbers and those of these customers, in one query."""
    conds = []
    if numbers:
        conds.append(Contract.number.in_(numbers))
    if customer_ids:
        conds.append(Contract.customer_id.in_(customer_ids))
    if not conds:
        return []
    return (await session.scalars(select(Contract).where(or_(*conds)).order_by(Contract.end_date.desc(),
                                                                                Contract.id.desc()))).all()


async def orders_by_number(session: AsyncSession, numbers: Collection[str]) -> Sequence[Order]:
    return (await session.scalars(select(Order).where(Order.number.in_(numbers)))).all()
