"""Tags over the API: agents list them (a prefix suggests) and put them on tickets; supervisors and admins keep the
list (create, rename, colour, delete)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import Agent, DbSession, IdPath, Supervisor
from api.openapi import Responses, error
from core.tags import service
from core.tags.schemas import TagCreate, TagRead, TagUpdate, TicketTagAdd
from core.tickets import service as tickets

router = APIRouter(tags=["tags"])
NAME_TAKEN: Responses = {409: error("Another tag has this name (case and spaces aside); the details name its id")}


@router.get("/tags", response_model=list[TagRead])
async def list_tags(session: DbSession, _user: Agent,
                    q: Annotated[str | None, Query(max_length=50, description="a prefix of the name (suggestions)")]
                    = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 500) -> list[TagRead]:
    """The tags by name; with `q`, those whose name starts with it."""
    return [TagRead.model_validate(t) for t in await service.list_tags(session, q, limit)]


@router.post("/tags", response_model=TagRead, status_code=201, responses=NAME_TAKEN)
async def create_tag(body: TagCreate, session: DbSession, user: Supervisor) -> TagRead:
    return TagRead.model_validate(await service.create(session, body, user))


@router.patch("/tags/{tag_id}", response_model=TagRead, responses=NAME_TAKEN)
async def update_tag(tag_id: IdPath, body: TagUpdate, session: DbSession, user: Supervisor) -> TagRead:
    """Rename or recolour: the tickets carrying the tag carry it under its new name."""
    return TagRead.model_validate(await service.update(session, tag_id, body, user))


@router.delete("/tags/{tag_id}", status_code=204)
async def delete_tag(tag_id: IdPath, session: DbSession, user: Supervisor) -> Response:
    """Delete the tag and take it off every ticket."""
    await service.delete(session, tag_id, user)
    return Response(status_code=204)


@router.get("/tickets/{ticket_ref}/tags", response_model=list[TagRead])
async def ticket_tags(ticket_ref: str, session: DbSession, _user: Agent) -> list[TagRead]:
    ticket = await tickets.get(session, tickets.ticket_id_from_ref(ticket_ref))
    return [TagRead.model_validate(t) for t in await service.tags_of_ticket(session, ticket.id)]


@router.post("/tickets/{ticket_ref}/tags", response_model=TagRead, status_code=201)
async def tag_ticket(ticket_ref: str, body: TicketTagAdd, session: DbSession, user: Agent) -> TagRead:
    """Put a tag on the ticket by name; a name nobody used yet creates the tag. Already there: no change."""
    ticket = await tickets.get(session, tickets.ticket_id_from_ref(ticket_ref), lock=True)
    tag = await service.ensure_tag(session, body.name, user)
    await service.add_to_ticket(session, ticket, tag, user)
    return TagRead.model_validate(tag)


@router.delete("/tickets/{ticket_ref}/tags/{tag_id}", status_code=204)
async def untag_ticket(ticket_ref: str, tag_id: IdPath, session: DbSession, user: Agent) -> Response:
    """Take the tag off the ticket (404 when the tag does not exist; not on the ticket: no change)."""
    ticket = await tickets.get(session, tickets.ticket_id_from_ref(ticket_ref), lock=True)
    await service.remove_from_ticket(session, ticket, await service.get(session, tag_id), user)
    return Response(status_code=204)
