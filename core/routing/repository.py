"""All routing queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.routing.models import IntentRoute
from core.users.models import Team


async def teams_with_rules(session: AsyncSession) -> Sequence[tuple[Team, str | None]]:
    """Every team with each intent a rule routes to it (None for a team without rules), in one query."""
    rows = (await session.execute(
        select(Team, IntentRoute.intent).outerjoin(IntentRoute, IntentRoute.team_id == Team.id)
    )).all()
    return [(team, intent) for team, intent in rows]


async def get_rule(session: AsyncSession, intent: str) -> IntentRoute | None:
    return (await session.scalars(select(IntentRoute).where(IntentRoute.intent == intent))).first()
