from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Agent, DbSession, IdPath, Offset, Supervisor
from api.openapi import CONFLICT
from core.outbox import service
from core.outbox.models import OutboxStatus
from core.outbox.schemas import OutboxRead

router = APIRouter(prefix="/outbox", tags=["outbox"], responses=CONFLICT)


@router.get("", response_model=list[OutboxRead])
async def list_outbox(session: DbSession, _user: Supervisor, status: OutboxStatus | None = None,
                      channel: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100,
                      offset: Offset = 0) -> list[OutboxRead]:
    rows = await service.list_rows(session, status=status, channel=channel, limit=limit, offset=offset)
    return [OutboxRead.model_validate(r) for r in rows]


@router.post("/{outbox_id}/retry", response_model=OutboxRead)
async def retry(outbox_id: IdPath, session: DbSession, user: Agent) -> OutboxRead:
    """Queue a failed message again (the retry button)."""
    return OutboxRead.model_validate(await service.retry(session, outbox_id, user))
