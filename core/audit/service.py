"""The audit log: every change made by a person."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import repository
from core.audit.models import AuditEntry
from core.users.models import User


def record(
    session: AsyncSession, actor: User | None, action: str, entity_type: str, entity_id: object, **data: Any
) -> AuditEntry:
    """Add an audit entry to the current unit of work."""
    entry = AuditEntry(
        actor_user_id=actor.id if actor else None,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        data=data,
    )
    session.add(entry)
    return entry


async def list_entries(
    session: AsyncSession, *, entity_type: str | None = None, entity_id: str | None = None,
    actor_user_id: int | None = None, limit: int = 100, offset: int = 0,
) -> Sequence[AuditEntry]:
    """Entries, newest first, optionally of one entity type, one entity or one actor."""
    return await repository.list_entries(session, entity_type=entity_type, entity_id=entity_id,
                                         actor_user_id=actor_user_id, limit=limit, offset=offset)
