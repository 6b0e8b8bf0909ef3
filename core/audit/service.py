"""The audit log: every change made by a person."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

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
