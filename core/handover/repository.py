"""The queue figures the hand-over notice quotes: load, agents and recent first-response times (indexed reads)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core.calendars.models import Calendar
from core.tickets.models import Ticket, TicketStatus
from core.users.models import User


async def open_unassigned(session: AsyncSession, team_ids: Collection[int], cap: int) -> dict[int, int]:
    """Open tickets nobody holds, per queue, counted up to `cap` (ix_tickets_status_team): a queue thousands
    deep costs no more to count than one `cap` deep, and the wait quoted is "hours" either way."""
    parts = [
        select(Ticket.team_id)
        .where(Ticket.status == TicketStatus.open, Ticket.team_id == team_id, Ticket.assignee_id.is_(None))
        .limit(cap).subquery()
        for team_id in sorted(team_ids)
    ]
    if not parts:
        return {}
    every = union_all(*(select(p.c.team_id) for p in parts)).subquery()
    rows = (await session.execute(select(every.c.team_id, func.count()).group_by(every.c.team_id))).all()
    return {team_id: n for team_id, n in rows if team_id is not None}


async def active_agents(session: AsyncSession, team_ids: Collection[int]) -> dict[int, int]:
    rows = (await session.execute(
        select(User.team_id, func.count())
        .where(User.team_id.in_(team_ids), User.is_active.is_(True))
        .group_by(User.team_id))).all()
    return {team_id: n for team_id, n in rows if team_id is not None}


async def recent_first_responses(session: AsyncSession, team_ids: Collection[int],
                                 per_team: int) -> list[tuple[int, datetime, datetime]]:
    """(team, created, first response) of each queue's latest `per_team` answered tickets: one statement, each
    part a short backwards walk of ix_tickets_team_first_response (never the queue's whole history)."""
    parts = [
        select(Ticket.team_id, Ticket.created_at, Ticket.first_response_at)
        .where(Ticket.team_id == team_id, Ticket.first_response_at.is_not(None))
        .order_by(Ticket.first_response_at.desc()).limit(per_team).subquery()
        for team_id in sorted(team_ids)
    ]
    if not parts:
        return []
    stmt = union_all(*(select(p.c.team_id, p.c.created_at, p.c.first_response_at) for p in parts))
    rows = (await session.execute(stmt)).all()
    return [(team_id, created, answered) for team_id, created, answered in rows]


async def calendars(session: AsyncSession, calendar_ids: Collection[int]) -> Sequence[Calendar]:
    return (await session.scalars(
        select(Calendar).where(Calendar.id.in_(calendar_ids)).options(selectinload(Calendar.exceptions)))).all()
