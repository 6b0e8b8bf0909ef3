"""All CSAT queries."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.csat.models import CsatSurvey


async def survey_of(session: AsyncSession, ticket_id: int, *, lock: bool = False) -> CsatSurvey | None:
    stmt = select(CsatSurvey).where(CsatSurvey.ticket_id == ticket_id)
    if lock:
        stmt = stmt.with_for_update()
    result: CsatSurvey | None = await session.scalar(stmt)
    return result
