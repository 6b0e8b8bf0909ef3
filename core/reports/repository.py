"""The board's aggregate queries (over unmerged tickets)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from core.tickets.models import Ticket, TicketStatus


async def per_team(session: AsyncSession, statuses: Collection[TicketStatus]) -> dict[int | None, tuple[int, int]]:
    """Per team: (tickets in `statuses`, of them unassigned)."""
    rows = (await session.execute(
        select(Ticket.team_id, func.count(), func.coalesce(func.sum(case((Ticket.assignee_id.is_(None), 1),
                                                                         else_=0)), 0))
        .where(Ticket.status.in_(list(statuses)), Ticket.merged_into_id.is_(None)).group_by(Ticket.team_id)
    )).all()
    return {team_id: (int(total), int(waiting)) for team_id, total, waiting in rows}


async def longest_waiting_unassigned(session: AsyncSession, statuses: Collection[TicketStatus], team_id: int
                                     ) -> Ticket | None:
    """The team's unassigned ticket whose customer has waited longest (with its customer)."""
    unassigned = and_(Ticket.status.in_(list(statuses)), Ticket.assignee_id.is_(None),
                      Ticket.merged_into_id.is_(None))
    return (await session.scalars(
        select(Ticket).where(unassigned, Ticket.team_id == team_id).options(joinedload(Ticket.customer))
        .order_by(Ticket.last_customer_message_at.is_(None), Ticket.last_customer_message_at, Ticket.id)
        .limit(1)
    )).first()


async def count_by_status(session: AsyncSession, statuses: Collection[TicketStatus]) -> dict[str, int]:
    rows = (await session.execute(
        select(Ticket.status, func.count()).where(Ticket.status.in_(list(statuses)),
                                                  Ticket.merged_into_id.is_(None)).group_by(Ticket.status)
    )).all()
    return {str(s): int(c) for s, c in rows}


async def longest_waiting(session: AsyncSession, statuses: Collection[TicketStatus], limit: int) -> Sequence[Ticket]:
    """Tickets in `statuses`, the longest-waiting customer first, with customer, team and assignee."""
    return (await session.scalars(
        select(Ticket).where(Ticket.status.in_(list(statuses)), Ticket.merged_into_id.is_(None))
        .options(joinedload(Ticket.customer), joinedload(Ticket.team), joinedload(Ticket.assignee))
        .order_by(Ticket.last_customer_message_at.is_(None), Ticket.last_customer_message_at, Ticket.id)
        .limit(limit)
    )).all()
