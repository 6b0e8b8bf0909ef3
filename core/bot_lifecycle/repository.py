"""The bot lifecycle's one query of its own."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.tickets.models import Message


async def latest_message_id(session: AsyncSession, ticket_id: int) -> int | None:
    """The newest message of the ticket (ix_messages_ticket_id)."""
    return await session.scalar(select(func.max(Message.id)).where(Message.ticket_id == ticket_id))
