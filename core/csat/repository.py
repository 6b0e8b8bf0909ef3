"""All CSAT queries."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.calendars.models import Calendar
from core.csat.models import CsatSurvey
from core.users.models import Team


async def survey_of(session: AsyncSession, ticket_id: int, *, lock: bool = False) -> CsatSurvey | None:
    stmt = select(CsatSurvey).where(CsatSurvey.ticket_id == ticket_id)
    if lock:
        stmt = stmt.with_for_update()
    result: CsatSurvey | None = await session.scalar(stmt)
    return result


async def team(session: AsyncSession, team_id: int | None) -> Team | None:
    if team_id is None:
        return None
    return await session.get(Team, team_id)


async def calendar_time_zone(session: AsyncSession, calendar_id: int | None) -> str | None:
    if calendar_id is None:
        return None
    result: str | None = await session.scalar(select(Calendar.time_zone).where(Calendar.id == calendar_id))
    return result
