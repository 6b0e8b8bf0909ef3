"""Unread markers: a ticket is unread for a person when its customer wrote after they last saw it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.tickets import repository as ticket_repository
from core.tickets.models import Ticket
from core.unread import repository


async def mark_seen(session: AsyncSession, user_id: int, ticket_id: int, now: datetime) -> None:
    """The user has the ticket's conversation in front of them now (its page, or its live refresh)."""
    await repository.mark_seen(session, user_id, ticket_id, now)


async def unread_ids(session: AsyncSession, user_id: int, tickets: Sequence[Ticket]) -> set[int]:
    """The tickets (of one inbox page) with a customer message the user has not seen: two queries."""
    ids = [t.id for t in tickets]
    wrote = await ticket_repository.latest_customer_message_at(session, ids)
    seen = await repository.seen_at(session, user_id, list(wrote))
    return {ticket_id for ticket_id, at in wrote.items()
            if (last_seen := seen.get(ticket_id)) is None or last_seen < at}
