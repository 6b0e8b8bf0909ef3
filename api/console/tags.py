"""Tags in the console: agents tag a ticket from its page (existing names suggested), supervisors and admins keep
the list (rename, colour, delete) on the admin page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from api.console.render import render
from api.console.routes import _locked, redirect, ticket_url, validated
from api.console.security import ConsoleSupervisor, ConsoleUser, CsrfChecked
from api.deps import DbSession, IdPath
from core.i18n import translator
from core.tags import service as tags
from core.tags.models import COLOURS
from core.tags.schemas import TagCreate, TagUpdate

router = APIRouter(prefix="/console", include_in_schema=False)
ADMIN_URL = "/console/admin/tags"


@router.post("/tickets/{ref}/tags", dependencies=[CsrfChecked])
async def tag_ticket(ref: str, session: DbSession, user: ConsoleUser, name: Annotated[str, Form()] = "") -> Response:
    ticket = await _locked(session, ref)
    tag = await tags.ensure_tag(session, name, user)  # a bad name: 422 with the reason
    await tags.add_to_ticket(session, ticket, tag, user)
    return redirect(ticket_url(ticket) + "#tags-h", translator(user.language)("tags.added", name=tag.name))


@router.post("/tickets/{ref}/tags/{tag_id}/remove", dependencies=[CsrfChecked])
async def untag_ticket(ref: str, tag_id: IdPath, session: DbSession, user: ConsoleUser) -> Response:
    ticket = await _locked(session, ref)
    tag = await tags.get(session, tag_id)
    await tags.remove_from_ticket(session, ticket, tag, user)
    return redirect(ticket_url(ticket) + "#tags-h", translator(user.language)("tags.removed", name=tag.name))


@router.get("/admin/tags")
async def admin_tags(request: Request, session: DbSession, _user: ConsoleSupervisor) -> Response:
    return render(request, "admin_tags.html", {"section": "tags", "items": await tags.list_tags(session),
                                               "colours": COLOURS})


@router.post("/admin/tags", dependencies=[CsrfChecked])
async def admin_create_tag(session: DbSession, actor: ConsoleSupervisor, name: Annotated[str, Form()] = "",
                           colour: Annotated[str, Form()] = "grey") -> Response:
    await tags.create(session, validated(TagCreate, name=name, colour=colour), actor)
    return redirect(ADMIN_URL, translator(actor.language)("saved"))


@router.post("/admin/tags/{tag_id}", dependencies=[CsrfChecked])
async def admin_update_tag(tag_id: IdPath, session: DbSession, actor: ConsoleSupervisor,
                           name: Annotated[str, Form()] = "", colour: Annotated[str, Form()] = "") -> Response:
    await tags.update(session, tag_id, validated(TagUpdate, name=name or None, colour=colour or None), actor)
    return redirect(ADMIN_URL, translator(actor.language)("saved"))


@router.post("/admin/tags/{tag_id}/delete", dependencies=[CsrfChecked])
async def admin_delete_tag(tag_id: IdPath, session: DbSession, actor: ConsoleSupervisor) -> Response:
    await tags.delete(session, tag_id, actor)
    return redirect(ADMIN_URL, translator(actor.language)("tags.deleted"))
