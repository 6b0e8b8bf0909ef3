"""Queries of the unread markers."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.unread.models import TicketSeen


async def mark_seen(session: AsyncSession, user_id: int, ticket_id: int, at: datetime) -> None:
    """Insert or move forward this user's marker of this ticket (one statement, safe against a parallel view)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(TicketSeen).values(user_id=user_id, ticket_id=ticket_id, seen_at=at)
    stmt = stmt.on_conflict_do_update(index_elements=[TicketSeen.user_id, TicketSeen.ticket_id],
                                      set_={"seen_at": at}, where=TicketSeen.seen_at < at)
    await session.execute(stmt)


async def seen_at(session: AsyncSession, user_id: int, ticket_ids: Collection[int]) -> dict[int, datetime]:
    """When this user last saw each of these tickets (never seen: absent); one primary-key lookup per page."""
    if not ticket_ids:
        return {}
    rows = await session.execute(select(TicketSeen.ticket_id, TicketSeen.seen_at).where(
        TicketSeen.user_id == user_id, TicketSeen.ticket_id.in_(list(ticket_ids))))
    return {ticket_id: at for ticket_id, at in rows}
