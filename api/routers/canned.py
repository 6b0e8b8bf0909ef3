"""Canned responses over the API: agents list and search them (rendered for a ticket), admins manage them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import Admin, Agent, DbSession, IdPath
from api.openapi import CONFLICT, NOT_FOUND
from core.canned import service
from core.canned.schemas import (
    CannedResponseCreate,
    CannedResponseRead,
    CannedResponseRendered,
    CannedResponseUpdate,
)
from core.tickets import service as tickets

router = APIRouter(prefix="/canned-responses", tags=["canned responses"])


@router.get("", response_model=list[CannedResponseRendered], responses={**NOT_FOUND})  # an unknown ticket
async def list_canned(session: DbSession, user: Agent,
                      q: Annotated[str | None, Query(max_length=100, description="a shortcut prefix or words of "
                                                     "the title, as typed after \"/\" in a reply")] = None,
                      ticket: Annotated[str | None, Query(max_length=40, description="a ticket id or number: only "
                                                          "the responses usable on it, each rendered for it")] = None,
                      ) -> list[CannedResponseRendered]:
    """The canned responses, by title; with `ticket`, those of its language and queue with their `text` filled in
    (without: `text` is null)."""
    if ticket is None:
        return [CannedResponseRendered(**CannedResponseRead.model_validate(c).model_dump(), text=None)
                for c in service.matching(await service.list_all(session), q)]
    found = await tickets.get(session, tickets.ticket_id_from_ref(ticket))
    usable = service.matching(await service.list_for_ticket(session, found), q)
    return [CannedResponseRendered(**CannedResponseRead.model_validate(c).model_dump(),
                                   text=service.render_for(c, found, user)) for c in usable]


@router.get("/{canned_id}", response_model=CannedResponseRead)
async def get_canned(canned_id: IdPath, session: DbSession, _user: Agent) -> CannedResponseRead:
    return CannedResponseRead.model_validate(await service.get(session, canned_id))


# A taken shortcut (409), an unknown queue (404).
@router.post("", response_model=CannedResponseRead, status_code=201, responses={**CONFLICT, **NOT_FOUND})
async def create_canned(body: CannedResponseCreate, session: DbSession, user: Admin) -> CannedResponseRead:
    return CannedResponseRead.model_validate(await service.create(session, body, user))


@router.put("/{canned_id}", response_model=CannedResponseRead, responses={**CONFLICT, **NOT_FOUND})
async def update_canned(canned_id: IdPath, body: CannedResponseUpdate, session: DbSession,
                        user: Admin) -> CannedResponseRead:
    return CannedResponseRead.model_validate(await service.update(session, canned_id, body, user))


@router.delete("/{canned_id}", status_code=204)
async def delete_canned(canned_id: IdPath, session: DbSession, user: Admin) -> Response:
    await service.delete(session, canned_id, user)
    return Response(status_code=204)
