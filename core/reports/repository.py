"""The board's aggregate queries (over unmerged tickets).

The board reads the active tickets (a small slice of a year: the statuses are spelled into the SQL, so the planner
can tell, and the partial indexes over active tickets apply): their counts in one grouped read, the longest-waiting
customers by `ix_tickets_active_waiting`'s order.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import UnaryExpression, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from core.tickets.models import Ticket, TicketStatus
from core.tickets.repository import status_in, with_relations


def _waiting_order() -> list[UnaryExpression[Any]]:
    """Longest-waiting customer first, tickets without a customer message last, then by id: the order of
    `ix_tickets_active_waiting` (last_customer_message_at, id), so a page is a short walk of it."""
    return [Ticket.last_customer_message_at.asc().nulls_last(), Ticket.id.asc()]


@dataclass(frozen=True, slots=True)
class Slice:
    """How many unmerged tickets share a status, a team and an assignee."""

    status: str
    team_id: int | None
    assignee_id: int | None
    count: int


async def slices(session: AsyncSession, statuses: Collection[TicketStatus]) -> list[Slice]:
    """Unmerged tickets in `statuses` counted by (status, team, assignee): every count of the board in one read
    (a few hundred groups) instead of one scan of the active tickets per count."""
    rows = (await session.execute(
        select(Ticket.status, Ticket.team_id, Ticket.assignee_id, func.count())
        .where(status_in(statuses), Ticket.merged_into_id.is_(None))
        .group_by(Ticket.status, Ticket.team_id, Ticket.assignee_id)
    )).all()
    return [Slice(str(s), t, a, int(n)) for s, t, a, n in rows]


async def longest_waiting_unassigned(session: AsyncSession, statuses: Collection[TicketStatus]
                                     ) -> dict[int, Ticket]:
    """Per team, its unassigned ticket whose customer has waited longest (with its customer), in one read."""
    ranked = (
        select(Ticket.id, func.row_number().over(partition_by=Ticket.team_id, order_by=_waiting_order()).label("n"))
        .where(status_in(statuses), Ticket.assignee_id.is_(None), Ticket.merged_into_id.is_(None),
               Ticket.team_id.is_not(None))
        .subquery()
    )
    found = (await session.scalars(
        select(Ticket).where(Ticket.id.in_(select(ranked.c.id).where(ranked.c.n == 1)))
        .options(joinedload(Ticket.customer))
    )).all()
    return {t.team_id: t for t in found if t.team_id is not None}


async def longest_waiting(session: AsyncSession, statuses: Collection[TicketStatus], limit: int) -> Sequence[Ticket]:
    """Tickets in `statuses`, the longest-waiting customer first, with customer, identity, team and assignee."""
    return (await session.scalars(
        with_relations(select(Ticket).where(status_in(statuses), Ticket.merged_into_id.is_(None)))
        .order_by(*_waiting_order())
        .limit(limit)
    )).all()
