"""Whether a calendar is in use by SLA policies: the check a calendar's deletion makes (409 while it is)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ConflictError
from core.sla import repository


async def ensure_calendar_unused(session: AsyncSession, calendar_id: int) -> None:
    """ConflictError (409) naming the SLA policies that count in this calendar, if any do."""
    names = await repository.policy_names_using_calendar(session, calendar_id)
    if names:
        raise ConflictError(f"calendar {calendar_id} is used by SLA policies: {', '.join(names)}",
                            calendar_id=calendar_id, sla_policies=list(names))
