"""All canned-response queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from core.canned.models import CannedResponse


async def get(session: AsyncSession, canned_id: int) -> CannedResponse | None:
    stmt = select(CannedResponse).where(CannedResponse.id == canned_id).options(joinedload(CannedResponse.team))
    return (await session.scalars(stmt)).first()


async def get_by_shortcut(session: AsyncSession, shortcut: str) -> CannedResponse | None:
    return (await session.scalars(select(CannedResponse).where(CannedResponse.shortcut == shortcut))).first()


async def list_all(session: AsyncSession) -> Sequence[CannedResponse]:
    stmt = select(CannedResponse).options(joinedload(CannedResponse.team)).order_by(CannedResponse.title,
                                                                                    CannedResponse.id)
    return (await session.scalars(stmt)).all()


async def list_for(session: AsyncSession, *, language: str | None, team_id: int | None) -> Sequence[CannedResponse]:
    """Responses usable on a ticket: those of its language and queue, plus the universal ones."""
    stmt = select(CannedResponse).options(joinedload(CannedResponse.team))
    if language:
        stmt = stmt.where(or_(CannedResponse.language.is_(None), CannedResponse.language == language))
    stmt = stmt.where(or_(CannedResponse.team_id.is_(None), CannedResponse.team_id == team_id))
    return (await session.scalars(stmt.order_by(CannedResponse.title, CannedResponse.id))).all()


async def delete(session: AsyncSession, canned: CannedResponse) -> None:
    await session.delete(canned)
    await session.flush()
