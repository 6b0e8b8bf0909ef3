"""What an SLA policy's calendar use looks like to the calendar's deletion (409 while any policy counts in it)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from core.sla import repository


async def policies_using(session: AsyncSession, calendar_id: int) -> list[str]:
    """The SLA policies that count in this calendar, named for the admin ("SLA policy billing")."""
    return [f"SLA policy {name}" for name in await repository.policy_names_using_calendar(session, calendar_id)]
