from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.quarantine.models import QuarantinedPayload


async def list_payloads(session: AsyncSession, channel: str | None, limit: int, offset: int
                        ) -> Sequence[QuarantinedPayload]:
    stmt = select(QuarantinedPayload).order_by(QuarantinedPayload.id.desc()).limit(limit).offset(offset)
    if channel:
        stmt = stmt.where(QuarantinedPayload.channel == channel)
    return (await session.scalars(stmt)).all()
