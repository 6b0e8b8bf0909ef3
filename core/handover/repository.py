"""The queue figures the hand-over notice quotes: load, agents and recent first-response times (indexed reads)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core.calendars.models import Calendar
from core.tickets.models import Ticket, TicketStatus
from core.users.models import User


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """What one read found for a set of queues."""

    open_unassigned: dict[int, int]  # team id -> open tickets nobody holds, counted up to the cap
    agents: dict[int, int]  # team id -> active members
    recent: list[tuple[int, datetime, datetime]]  # (team, created, first response) of the latest answered tickets


_RECENT, _LOAD, _AGENTS = 0, 1, 2


async def queue_figures(session: AsyncSession, team_ids: Collection[int], cap: int, per_team: int) -> QueueFigures:
    """The load, active agents and latest first responses of each queue: one statement (a UNION ALL of three kinds
    of row) instead of a round trip each, every part an indexed read.

    - load: open tickets nobody holds, counted up to `cap` per queue (ix_tickets_waiting): a queue thousands deep
      costs no more to count than one `cap` deep, and the wait quoted is "hours" either way;
    - recent: each queue's latest `per_team` answered tickets, a short backwards walk of
      ix_tickets_team_first_response (never the queue's whole history).
    """
    ids = sorted(team_ids)
    if not ids:
        return QueueFigures({}, {}, [])
    recent = [
        select(Ticket.team_id, Ticket.created_at, Ticket.first_response_at)
        .where(Ticket.team_id == team_id, Ticket.first_response_at.is_not(None))
        .order_by(Ticket.first_response_at.desc()).limit(per_team).subquery()
        for team_id in ids
    ]
    # The waiting tickets as automatic assignment sees them (open, nobody holds them, not merged: a merged ticket is
    # closed anyway), walked in the order of ix_tickets_waiting, a partial index holding only them: the planners
    # take it for the order (SQLite would otherwise walk ix_tickets_status_team and read each row for its holder,
    # ~3x the CPU for a queue hundreds deep).
    waiting = [
        select(Ticket.team_id)
        .where(Ticket.status == TicketStatus.open, Ticket.team_id == team_id, Ticket.assignee_id.is_(None),
               Ticket.merged_into_id.is_(None))
        .order_by(Ticket.created_at).limit(cap).subquery()
        for team_id in ids
    ]
    load = union_all(*(select(p.c.team_id) for p in waiting)).subquery()
    none = null()
    # The recent rows come first: a UNION's result columns take their types from its first SELECT (the timestamps'
    # type reads them back time-zone aware on SQLite too).
    stmt = union_all(
        *(select(literal(_RECENT).label("kind"), p.c.team_id, literal(0).label("n"), p.c.created_at,
                 p.c.first_response_at) for p in recent),
        select(literal(_LOAD), load.c.team_id, func.count(), none, none).group_by(load.c.team_id),
        select(literal(_AGENTS), User.team_id, func.count(), none, none)
        .where(User.team_id.in_(ids), User.is_active.is_(True)).group_by(User.team_id),
    )
    figures = QueueFigures({}, {}, [])
    for kind, team_id, n, created, answered in (await session.execute(stmt)).all():
        if team_id is None:
            continue
        if kind == _RECENT:
            figures.recent.append((team_id, created, answered))
        elif kind == _LOAD:
            figures.open_unassigned[team_id] = n
        else:
            figures.agents[team_id] = n
    return figures


async def calendars(session: AsyncSession, calendar_ids: Collection[int]) -> Sequence[Calendar]:
    return (await session.scalars(
        select(Calendar).where(Calendar.id.in_(calendar_ids)).options(selectinload(Calendar.exceptions)))).all()
