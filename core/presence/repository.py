"""The little presence reads of a ticket: whether it exists, and what showing its customer an agent's typing needs.

Presence beats come every few seconds from every open ticket page: these read one row (two columns of the
identity), never the ticket with its conversation.
"""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.customers.models import ChannelIdentity
from core.tickets.models import Ticket, TicketStatus


async def ticket_exists(session: AsyncSession, ticket_id: int) -> bool:
    return bool(await session.scalar(select(exists().where(Ticket.id == ticket_id))))


async def customer_line(session: AsyncSession, ticket_id: int
                        ) -> tuple[TicketStatus, int | None, str, str | None, str | None] | None:
    """(status, merged_into_id, channel, thread_key, the identity's external id) of a ticket; None if there is none."""
    query = (select(Ticket.status, Ticket.merged_into_id, Ticket.channel, Ticket.thread_key,
                    ChannelIdentity.external_id)
             .outerjoin(ChannelIdentity, ChannelIdentity.id == Ticket.identity_id)
             .where(Ticket.id == ticket_id))
    row = (await session.execute(query)).one_or_none()
    if row is None:
        return None
    status, merged_into_id, channel, thread_key, external_id = row  # external_id: None without an identity
    return status, merged_into_id, channel, thread_key, external_id
