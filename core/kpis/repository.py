"""Every query of the KPI engine: the sources of a ticket's facts, and the facts and rollups kept from them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core.calendars.models import Calendar
from core.csat.models import CsatSurvey
from core.sla.models import SlaPolicy, TicketSla
from core.tickets.models import AuthorKind, Direction, Message, Ticket
from core.users.models import Team, User

ESCALATE_ACTION = "escalate"


async def tickets(session: AsyncSession, ticket_ids: Collection[int]) -> Sequence[Ticket]:
    return (await session.scalars(select(Ticket).where(Ticket.id.in_(list(ticket_ids))))).all()


async def agents_per_ticket(session: AsyncSession, ticket_ids: Collection[int]) -> dict[int, int]:
    """Distinct agents who wrote to the customer, per ticket (tickets without any are left out)."""
    rows = (await session.execute(
        select(Message.ticket_id, func.count(distinct(Message.author_user_id)))
        .where(Message.ticket_id.in_(list(ticket_ids)), Message.author_kind == AuthorKind.agent,
               Message.direction == Direction.outbound)
        .group_by(Message.ticket_id)
    )).all()
    return {int(t): int(n) for t, n in rows}


async def agent_message_tickets(session: AsyncSession, ticket_ids: Collection[int]) -> set[int]:
    """Tickets with any agent message (even one whose author was deleted since)."""
    rows = await session.scalars(
        select(Message.ticket_id).where(Message.ticket_id.in_(list(ticket_ids)),
                                        Message.author_kind == AuthorKind.agent).distinct())
    return set(rows)


async def escalations(session: AsyncSession, ticket_ids: Collection[int]) -> list[tuple[int, datetime, str]]:
    """(ticket id, moment, reason) of every customer message decided "escalate" (core/ingest stores the decision
    in the message's extra)."""
    rows = (await session.execute(
        select(Message.ticket_id, Message.created_at, Message.extra)
        .where(Message.ticket_id.in_(list(ticket_ids)), Message.direction == Direction.inbound,
               Message.extra["action"].as_string() == ESCALATE_ACTION)
        .order_by(Message.id)
    )).all()
    return [(int(t), at, str((extra or {}).get("reason") or "")) for t, at, extra in rows]


async def ticket_slas(session: AsyncSession, ticket_ids: Collection[int]) -> dict[int, TicketSla]:
    rows = await session.scalars(select(TicketSla).where(TicketSla.ticket_id.in_(list(ticket_ids))))
    return {row.ticket_id: row for row in rows}


async def policy_calendars(session: AsyncSession) -> dict[int, int]:
    """policy id -> its calendar id."""
    return {int(p): int(c) for p, c in (await session.execute(select(SlaPolicy.id, SlaPolicy.calendar_id))).all()}


async def calendars_with_exceptions(session: AsyncSession, calendar_ids: Collection[int]) -> Sequence[Calendar]:
    return (await session.scalars(
        select(Calendar).where(Calendar.id.in_(list(calendar_ids))).options(selectinload(Calendar.exceptions))
    )).all()


async def surveys(session: AsyncSession, ticket_ids: Collection[int]) -> dict[int, CsatSurvey]:
    rows = await session.scalars(select(CsatSurvey).where(CsatSurvey.ticket_id.in_(list(ticket_ids))))
    return {row.ticket_id: row for row in rows}


async def ticket_ids_created(session: AsyncSession, start: datetime, end: datetime, *, after: int | None = None,
                             limit: int | None = None) -> list[int]:
    """Unmerged tickets created in [start, end), in id order."""
    query = select(Ticket.id).where(Ticket.created_at >= start, Ticket.created_at < end,
                                    Ticket.merged_into_id.is_(None))
    if after is not None:
        query = query.where(Ticket.id > after)
    query = query.order_by(Ticket.id)
    if limit is not None:
        query = query.limit(limit)
    return list(await session.scalars(query))


async def open_at(session: AsyncSession, moment: datetime, column: Any | None = None) -> dict[Any, int]:
    """Unmerged tickets created before `moment` and not resolved before it, per `column` value (None: total)."""
    condition = and_(Ticket.created_at < moment, Ticket.merged_into_id.is_(None),
                     (Ticket.resolved_at.is_(None)) | (Ticket.resolved_at >= moment))
    if column is None:
        return {None: int(await session.scalar(select(func.count()).select_from(Ticket).where(condition)) or 0)}
    result = await session.execute(select(column, func.count()).where(condition).group_by(column))
    return {row[0]: int(row[1]) for row in result}


async def teams(session: AsyncSession) -> dict[int, tuple[str, str]]:
    """team id -> (slug, name)."""
    return {row[0]: (row[1], row[2]) for row in await session.execute(select(Team.id, Team.slug, Team.name))}


async def team_id_by_slug(session: AsyncSession, slug: str) -> int | None:
    return await session.scalar(select(Team.id).where(Team.slug == slug))


async def user_names(session: AsyncSession, user_ids: Collection[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    return {row[0]: row[1] for row in await session.execute(
        select(User.id, User.name).where(User.id.in_(list(user_ids))))}
