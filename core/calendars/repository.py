"""All calendar queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core.calendars.models import Calendar
from core.users.models import Team


async def get(session: AsyncSession, calendar_id: int) -> Calendar | None:
    stmt = select(Calendar).where(Calendar.id == calendar_id).options(selectinload(Calendar.exceptions))
    return (await session.scalars(stmt)).first()


async def exists(session: AsyncSession, calendar_id: int) -> bool:
    """Whether the calendar exists (its row only: no exception rows loaded)."""
    return await session.scalar(select(Calendar.id).where(Calendar.id == calendar_id)) is not None


async def id_by_name(session: AsyncSession, name: str) -> int | None:
    """The id of the calendar with this name, if any (a name-only query)."""
    return await session.scalar(select(Calendar.id).where(Calendar.name == name))


async def get_by_name(session: AsyncSession, name: str) -> Calendar | None:
    stmt = select(Calendar).where(Calendar.name == name).options(selectinload(Calendar.exceptions))
    return (await session.scalars(stmt)).first()


async def list_all(session: AsyncSession) -> Sequence[Calendar]:
    """Every calendar without its exceptions (a list shows names, zones and weekly hours)."""
    return (await session.scalars(select(Calendar).order_by(Calendar.name, Calendar.id))).all()


async def list_with_exceptions(session: AsyncSession) -> Sequence[Calendar]:
    """Every calendar with its dated exceptions (what "open now" and "next opening" are counted from)."""
    stmt = select(Calendar).order_by(Calendar.name, Calendar.id).options(selectinload(Calendar.exceptions))
    return (await session.scalars(stmt)).all()


async def count(session: AsyncSession) -> int:
    return (await session.scalar(select(func.count()).select_from(Calendar))) or 0


async def delete(session: AsyncSession, calendar: Calendar) -> None:
    await session.delete(calendar)
    await session.flush()


async def queues_using(session: AsyncSession, calendar_id: int) -> list[str]:
    """Slugs of the queues whose business hours this calendar is."""
    return list((await session.scalars(select(Team.slug).where(Team.calendar_id == calendar_id)
                                       .order_by(Team.slug))).all())
