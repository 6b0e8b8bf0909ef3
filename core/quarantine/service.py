"""Channel payloads that could not be parsed, kept with the reason for admins to inspect."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from core.quarantine import repository
from core.quarantine.models import QuarantinedPayload


async def list_payloads(session: AsyncSession, channel: str | None, limit: int, offset: int
                        ) -> Sequence[QuarantinedPayload]:
    """Quarantined payloads, newest first, of one channel or all."""
    return await repository.list_payloads(session, channel, limit, offset)
