"""Outages and mass problems: supervisors (or an integration key with incidents:write) open, read and resolve them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import DbSession, State
from api.keys import IncidentsWriter
from api.openapi import CONFLICT, NOT_FOUND
from core.db.base import MAX_ID
from core.incidents import service
from core.incidents.models import IncidentStatus
from core.incidents.schemas import IncidentCreate, IncidentDetail, IncidentPage, IncidentRead, IncidentResolve

router = APIRouter(prefix="/incidents", tags=["incidents"], responses={**NOT_FOUND, **CONFLICT})
IncidentId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.post("", response_model=IncidentRead, status_code=201)
async def open_incident(body: IncidentCreate, session: DbSession, state: State,
                        caller: IncidentsWriter) -> IncidentRead:
    """Open an incident: new appeals of the affected customers with its intents are answered with its message and
    linked to it; with `notify_affected`, the affected customers who consented hear of it (rate-limited)."""
    incident = await service.open_incident(session, body, actor=caller.user, via_key=caller.key_name,
                                           now=state.clock.now())
    return IncidentRead.model_validate(incident)


@router.get("", response_model=IncidentPage)
async def list_incidents(session: DbSession, _caller: IncidentsWriter,
                         status: IncidentStatus | None = None,
                         before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                         limit: Annotated[int, Query(ge=1, le=200)] = 50) -> IncidentPage:
    """Newest first; `before` (an id) continues."""
    rows = await service.page(session, status, before, limit)
    return IncidentPage(items=[IncidentRead.model_validate(r) for r in rows],
                        next_before=rows[-1].id if len(rows) == limit else None)


@router.get("/{incident_id}", response_model=IncidentDetail)
async def get_incident(incident_id: IncidentId, session: DbSession, _caller: IncidentsWriter) -> IncidentDetail:
    return await service.detail(session, incident_id)


@router.post("/{incident_id}/resolve", response_model=IncidentRead)
async def resolve_incident(incident_id: IncidentId, body: IncidentResolve, session: DbSession, state: State,
                           caller: IncidentsWriter) -> IncidentRead:
    """Resolve it: the linked appeals are told of the fix and resolved, then the other affected customers who were
    told of the outage hear of the fix."""
    incident = await service.resolve(session, incident_id, body, actor=caller.user, via_key=caller.key_name,
                                     now=state.clock.now())
    return IncidentRead.model_validate(incident)
