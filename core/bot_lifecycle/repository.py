"""The bot lifecycle's one query of its own."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.tickets.models import Ticket, TicketStatus


async def quiet_bot_tickets(session: AsyncSession, before: datetime, limit: int) -> list[Ticket]:
    """Tickets with the bot, not merged, untouched since `before` (oldest first), locked; tickets another
    transaction holds are skipped, not waited for. Walks the partial index ix_tickets_bot_quiet: only the tickets
    with the bot are in it, however many the table holds."""
    return list((await session.scalars(
        select(Ticket)
        .where(Ticket.status == TicketStatus.bot, Ticket.merged_into_id.is_(None), Ticket.updated_at < before)
        .order_by(Ticket.updated_at, Ticket.id)
        .limit(limit)
        .with_for_update(skip_locked=True))).all())
