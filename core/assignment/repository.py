"""All assignment queries: automatic queues, eligible agents and their loads, waiting and returnable tickets."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, exists, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.tickets.models import WAITING_SQL, AuthorKind, Message, Ticket, TicketStatus
from core.users.models import AssignmentMode, Team, User

_PRIORITY_RANK = case({"urgent": 3, "high": 2, "normal": 1, "low": 0}, value=Ticket.priority, else_=1)


async def automatic_queue_ids(session: AsyncSession) -> list[int]:
    """The queues whose tickets are handed out automatically."""
    return list((await session.scalars(
        select(Team.id).where(Team.assignment_mode != AssignmentMode.manual).order_by(Team.id))).all())


async def lock_queue(session: AsyncSession, team_id: int) -> Team | None:
    """The queue, its row locked: one assignment run per queue at a time, however many instances.

    FOR NO KEY UPDATE: the foreign-key checks of tickets written meanwhile (an escalation into this queue) take a
    key-share lock on the row, which this one does not block.
    """
    return (await session.scalars(select(Team).where(Team.id == team_id).with_for_update(key_share=True))).first()


def _servable(seen_since: datetime) -> Any:
    """Who can take a ticket now: online (seen since `seen_since`), not away, with capacity."""
    return and_(User.last_seen_at >= seen_since, User.away.is_(False), User.capacity > 0)


async def eligible_agents(session: AsyncSession, team_id: int, seen_since: datetime) -> Sequence[User]:
    """The queue's active members who can take a ticket now, by id.

    Not locked: an agent belongs to one queue, and automatic assignments to them come only from runs of that queue,
    which its row lock (`lock_queue`) serialises; each run's statements see what the previous run committed.
    """
    return (await session.scalars(
        select(User).where(User.team_id == team_id, User.is_active.is_(True), _servable(seen_since))
        .order_by(User.id))).all()


async def any_waiting(session: AsyncSession, team_id: int) -> bool:
    """Whether the queue has a waiting ticket at all (one index probe; most runs stop here)."""
    return (await session.scalars(
        select(Ticket.id).where(Ticket.team_id == team_id, text(WAITING_SQL)).limit(1))).first() is not None


def waiting_query(team_id: int, limit: int, languages: Collection[str] | None) -> Select[Ticket]:
    """The statement of `waiting_tickets` (the benchmark explains it)."""
    # The partial index's predicate written out as it is in the index, never as bound parameters: a generic plan
    # (PostgreSQL's prepared statements) or SQLite could not prove a parameterised `status = ?` implies it.
    stmt = select(Ticket).where(Ticket.team_id == team_id, text(WAITING_SQL))
    if languages is not None:
        stmt = stmt.where(or_(Ticket.language.is_(None), Ticket.language.in_(list(languages))))
    return stmt.order_by(_PRIORITY_RANK.desc(), Ticket.created_at, Ticket.id).limit(limit)


async def waiting_tickets(session: AsyncSession, team_id: int, limit: int, languages: Collection[str] | None
                          ) -> Sequence[Ticket]:
    """The queue's open unassigned tickets, highest priority then oldest first, locked (ones another
    transaction holds are skipped). With `languages`, only tickets in one of them or without a language.

    Served by the partial index ix_tickets_waiting: only waiting tickets are in it, whatever the table's size.
    """
    stmt = waiting_query(team_id, limit, languages)
    return (await session.scalars(stmt.with_for_update(skip_locked=True))).all()


async def returnable_tickets(session: AsyncSession, team_id: int, *, seen_before: datetime,
                             assigned_before: datetime, limit: int) -> Sequence[Ticket]:
    """The queue's open tickets held by someone offline (not seen since `seen_before`, or deactivated), assigned
    before `assigned_before`, with no agent reply since they were assigned; locked, held ones skipped."""
    holder = aliased(User)
    replied = exists().where(
        Message.ticket_id == Ticket.id, Message.author_kind == AuthorKind.agent,
        or_(Ticket.assigned_at.is_(None), Message.created_at >= Ticket.assigned_at),
    )
    stmt = (
        select(Ticket).join(holder, holder.id == Ticket.assignee_id)
        .where(Ticket.team_id == team_id, Ticket.status == TicketStatus.open, Ticket.merged_into_id.is_(None),
               or_(holder.is_active.is_(False), holder.last_seen_at.is_(None), holder.last_seen_at < seen_before),
               or_(Ticket.assigned_at.is_(None), Ticket.assigned_at < assigned_before),
               ~replied)
        .order_by(Ticket.id).limit(limit).with_for_update(of=Ticket, skip_locked=True)
    )
    return (await session.scalars(stmt)).all()


async def staffing(session: AsyncSession, seen_since: datetime) -> dict[int, tuple[int, int, int]]:
    """Per queue: (active members, of them able to take a ticket now, of them with capacity), in one query."""
    online = _servable(seen_since)

    def count_if(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    rows = (await session.execute(
        select(User.team_id, func.count(), count_if(online), count_if(User.capacity > 0))
        .where(User.is_active.is_(True), User.team_id.is_not(None)).group_by(User.team_id)
    )).all()
    return {int(team_id): (int(n), int(on), int(cap)) for team_id, n, on, cap in rows}
