"""All incident queries. Every one is an index walk: the open incidents (partial index), the affected customers and
linked appeals by (incident, id) primary keys, a customer's contracts by customer, an area's contracts by region
range."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core.contracts.models import Contract, ContractStatus
from core.customers.models import Customer
from core.incidents.models import Incident, IncidentCustomer, IncidentSource, IncidentStatus, IncidentTicket
from core.tickets.models import Ticket

IN_CHUNK = 5000
LIVE_CONTRACTS = (ContractStatus.active, ContractStatus.terminating)


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def in_area(column: Any, area: str) -> Any:
    """The region is the area or inside it: `=`, or one index range (byte order: "/" + 1 is "0")."""
    return or_(column == area, (column >= area + "/") & (column < area + "0"))


def region_in_area(region: str, area: str) -> bool:
    return region == area or region.startswith(area + "/")


async def open_incidents(session: AsyncSession) -> Sequence[Incident]:
    return (await session.scalars(select(Incident).where(Incident.status == IncidentStatus.open)
                                  .order_by(Incident.id))).all()


async def get(session: AsyncSession, incident_id: int, *, lock: bool = False) -> Incident | None:
    stmt = select(Incident).where(Incident.id == incident_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).first()


async def page(session: AsyncSession, status: IncidentStatus | None, before: int | None, limit: int
               ) -> Sequence[Incident]:
    stmt = select(Incident).order_by(Incident.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(Incident.status == status)
    if before is not None:
        stmt = stmt.where(Incident.id < before)
    return (await session.scalars(stmt)).all()


async def usable_customers(session: AsyncSession, ids: Sequence[int]) -> set[int]:
    """Which of these customers exist and are not erased."""
    found: set[int] = set()
    for i in range(0, len(ids), IN_CHUNK):
        found.update((await session.scalars(select(Customer.id).where(
            Customer.id.in_(ids[i:i + IN_CHUNK]), Customer.erased_at.is_(None)))).all())
    return found


async def add_listed(session: AsyncSession, incident_id: int, customer_ids: Sequence[int]) -> None:
    if not customer_ids:
        return
    stmt = _insert(session)(IncidentCustomer.__table__).on_conflict_do_nothing()
    await session.execute(stmt, [{"incident_id": incident_id, "customer_id": c, "source": IncidentSource.listed}
                                 for c in customer_ids])


async def add_area(session: AsyncSession, incident_id: int, area: str) -> None:
    """Every customer with a live contract in the area, in one INSERT ... SELECT (no rows through Python)."""
    chosen = (select(literal(incident_id), Contract.customer_id, literal(IncidentSource.area.value))
              .where(in_area(Contract.region, area), Contract.status.in_(LIVE_CONTRACTS)).distinct())
    stmt = _insert(session)(IncidentCustomer.__table__).from_select(
        ["incident_id", "customer_id", "source"], chosen).on_conflict_do_nothing()
    await session.execute(stmt)


async def count_affected(session: AsyncSession, incident_id: int) -> int:
    return int(await session.scalar(select(func.count()).select_from(IncidentCustomer)
                                    .where(IncidentCustomer.incident_id == incident_id)) or 0)


async def affected_page(session: AsyncSession, incident_id: int, after: int, limit: int) -> list[int]:
    return list((await session.scalars(select(IncidentCustomer.customer_id).where(
        IncidentCustomer.incident_id == incident_id, IncidentCustomer.customer_id > after)
        .order_by(IncidentCustomer.customer_id).limit(limit))).all())


async def affected_pairs(session: AsyncSession, incident_ids: Collection[int], customer_ids: Collection[int]
                         ) -> set[tuple[int, int]]:
    """(incident, customer) among these that are affected: one primary-key lookup for an ingest batch."""
    if not incident_ids or not customer_ids:
        return set()
    rows = await session.execute(select(IncidentCustomer.incident_id, IncidentCustomer.customer_id).where(
        IncidentCustomer.incident_id.in_(incident_ids), IncidentCustomer.customer_id.in_(customer_ids)))
    return {(r[0], r[1]) for r in rows}


async def regions_of(session: AsyncSession, customer_ids: Collection[int]) -> dict[int, list[str]]:
    """The regions of these customers' live contracts (by the customer index)."""
    out: dict[int, list[str]] = {}
    if not customer_ids:
        return out
    rows = await session.execute(select(Contract.customer_id, Contract.region).where(
        Contract.customer_id.in_(customer_ids), Contract.region.is_not(None), Contract.status.in_(LIVE_CONTRACTS)))
    for customer_id, region in rows:
        if region is not None:
            out.setdefault(customer_id, []).append(region)
    return out


async def link(session: AsyncSession, rows: Sequence[tuple[int, int]], now: datetime) -> None:
    """(incident, ticket) links; a ticket linked already stays as it was."""
    if rows:
        stmt = _insert(session)(IncidentTicket.__table__).on_conflict_do_nothing()
        await session.execute(stmt, [{"incident_id": i, "ticket_id": t, "linked_at": now} for i, t in rows])


async def linked_page(session: AsyncSession, incident_id: int, after: int, limit: int) -> Sequence[Ticket]:
    """Linked appeals by ticket id after `after`, with the identity to answer on."""
    stmt = (select(Ticket).join(IncidentTicket, IncidentTicket.ticket_id == Ticket.id)
            .where(IncidentTicket.incident_id == incident_id, IncidentTicket.ticket_id > after)
            .order_by(IncidentTicket.ticket_id).limit(limit)
            .options(selectinload(Ticket.identity), selectinload(Ticket.customer)))
    return (await session.scalars(stmt)).all()


async def linked_customers(session: AsyncSession, incident_id: int, customer_ids: Collection[int]) -> set[int]:
    """Which of these customers have an appeal linked to the incident (they hear of the fix there)."""
    if not customer_ids:
        return set()
    return set((await session.scalars(select(Ticket.customer_id).join(
        IncidentTicket, IncidentTicket.ticket_id == Ticket.id).where(
        IncidentTicket.incident_id == incident_id, Ticket.customer_id.in_(customer_ids)))).all())


async def count_linked(session: AsyncSession, incident_id: int) -> int:
    return int(await session.scalar(select(func.count()).select_from(IncidentTicket)
                                    .where(IncidentTicket.incident_id == incident_id)) or 0)


async def newest_linked(session: AsyncSession, incident_id: int, limit: int) -> list[tuple[Any, ...]]:
    rows = await session.execute(
        select(Ticket.id, Ticket.status, Ticket.customer_id, IncidentTicket.linked_at)
        .join(IncidentTicket, IncidentTicket.ticket_id == Ticket.id)
        .where(IncidentTicket.incident_id == incident_id).order_by(IncidentTicket.ticket_id.desc()).limit(limit))
    return [tuple(r) for r in rows]
