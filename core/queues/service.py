"""Changing a queue's settings: one update spread over the rooms that own them, one answer with the warnings."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core.assignment import service as assignment
from core.csat import service as csat
from core.handover import service as handover
from core.queues.schemas import QueueSaved, QueueSettingsUpdate
from core.users.models import Team, User


async def update(session: AsyncSession, team: Team, body: QueueSettingsUpdate, actor: User, now: datetime,
                 offline_after: timedelta) -> QueueSaved:
    """Change the fields given (each room audits its own part); the queue as saved, with what will keep its
    tickets waiting if it is automatic.

    Raises:
        ValidationFailedError: an unknown calendar.
    """
    handover_part = body.handover_part()
    if handover_part is not None:
        await handover.update_queue(session, team, handover_part, actor)
    csat_part = body.csat_part(team)
    if csat_part is not None:
        await csat.update_queue(session, team, csat_part, actor)
    team, warnings = await assignment.update_queue(session, team, body.assignment_part(), actor, now, offline_after)
    return QueueSaved.model_validate(team).model_copy(update={"warnings": warnings})
