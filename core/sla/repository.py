"""All SLA queries."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import String, cast, delete, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from core.db.lists import IdListQuery
from core.jobs.models import ScheduledTask, TaskState
from core.sla.models import SlaPolicy, TicketSla
from core.tickets.models import Ticket
from core.users.models import Team


async def list_policies(session: AsyncSession) -> Sequence[SlaPolicy]:
    """Every policy in match order."""
    return (await session.scalars(select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.id))).all()


async def get_policy(session: AsyncSession, policy_id: int) -> SlaPolicy | None:
    return await session.get(SlaPolicy, policy_id)


async def get_policy_by_name(session: AsyncSession, name: str) -> SlaPolicy | None:
    return (await session.scalars(select(SlaPolicy).where(SlaPolicy.name == name))).first()


async def policy_names_using_calendar(session: AsyncSession, calendar_id: int) -> Sequence[str]:
    return (await session.scalars(
        select(SlaPolicy.name).where(SlaPolicy.calendar_id == calendar_id).order_by(SlaPolicy.name))).all()


async def teams(session: AsyncSession) -> Sequence[Team]:
    return (await session.scalars(select(Team))).all()


async def get_ticket_sla(session: AsyncSession, ticket_id: int) -> TicketSla | None:
    return (await session.scalars(select(TicketSla).where(TicketSla.ticket_id == ticket_id))).first()


async def clock_and_ticket_for_firing(session: AsyncSession, ticket_id: int) -> tuple[TicketSla, Ticket] | None:
    """A ticket's SLA clock and the ticket (with its queue, assignee and channel identity), both locked, in one
    query: what a timer firing reads."""
    stmt = (select(TicketSla, Ticket).join(Ticket, Ticket.id == TicketSla.ticket_id)
            .where(TicketSla.ticket_id == ticket_id)
            .options(joinedload(Ticket.team), joinedload(Ticket.assignee), joinedload(Ticket.identity))
            .with_for_update(of=[TicketSla, Ticket]))
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row is not None else None


# Read for every ingest batch: built once (building a statement costs more CPU than running it; core/db/lists.py).
_TICKET_SLAS = IdListQuery.build(lambda match: select(TicketSla).where(match(TicketSla.ticket_id)))


async def ticket_slas(session: AsyncSession, ticket_ids: Collection[int]) -> dict[int, TicketSla]:
    """The SLA clocks of many tickets in one query (tickets without one are absent)."""
    if not ticket_ids:
        return {}
    rows = (await session.scalars(*_TICKET_SLAS.bound(session, ticket_ids))).all()
    return {r.ticket_id: r for r in rows}


async def drop_policy_clocks(session: AsyncSession, policy_id: int, task_kind: str) -> int:
    """A policy is going: its pending timers are cancelled and its tickets lose their due time (the clock rows go
    with the policy by the foreign key). Returns how many tickets ran on it."""
    ids = select(TicketSla.ticket_id).where(TicketSla.policy_id == policy_id)
    keys = select(literal("ticket:", String) + cast(TicketSla.ticket_id, String)) \
        .where(TicketSla.policy_id == policy_id)
    await session.execute(delete(ScheduledTask).where(
        ScheduledTask.kind == task_kind, ScheduledTask.state == TaskState.pending, ScheduledTask.key.in_(keys))
        .execution_options(synchronize_session=False))
    result = await session.execute(update(Ticket).where(Ticket.id.in_(ids)).values(sla_due_at=None)
                                   .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)
