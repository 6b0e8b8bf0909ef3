"""Console routes of automatic assignment: the agents' heartbeat and away toggle, and the queues' settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response

from api.console.routes import _form_count, redirect, safe_next, validated
from api.console.security import ConsoleAdmin, ConsoleUser, CsrfChecked
from api.deps import DbSession, State
from core.assignment import service as assignment
from core.assignment.schemas import PresenceUpdate, QueueUpdate
from core.errors import ValidationFailedError
from core.i18n import translator
from core.users import service as users

router = APIRouter(prefix="/console", include_in_schema=False)


@router.post("/presence/heartbeat", dependencies=[CsrfChecked])
async def heartbeat(session: DbSession, state: State, user: ConsoleUser) -> Response:
    """console.js posts this every 25 s while a console page is open: the agent is online."""
    assignment.heartbeat(user, state.clock.now())
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@router.post("/presence/away", dependencies=[CsrfChecked])
async def set_away(session: DbSession, state: State, user: ConsoleUser, away: Annotated[str, Form()] = "",
                   next: Annotated[str, Form()] = "") -> Response:
    """The header's toggle: away (no new tickets, the held ones stay) or back."""
    if away not in ("on", "off"):
        raise ValidationFailedError("away: must be on or off")
    body = PresenceUpdate(away=away == "on")
    assignment.update_presence(session, user, body)
    assignment.heartbeat(user, state.clock.now())
    _ = translator(user.language)
    return redirect(safe_next(next), _("presence.now_away") if user.away else _("presence.now_back"))


@router.post("/admin/queues/{slug}", dependencies=[CsrfChecked])
async def update_queue(slug: str, session: DbSession, state: State, actor: ConsoleAdmin,
                       name: Annotated[str, Form()] = "", assignment_mode: Annotated[str, Form()] = "",
                       return_after_minutes: Annotated[str, Form()] = "") -> Response:
    team = await users.team_by_slug(session, slug)
    body: QueueUpdate = validated(
        QueueUpdate, name=name or None, assignment_mode=assignment_mode or None,
        return_after_minutes=_form_count(return_after_minutes, default=team.return_after_minutes))
    team, warnings = await assignment.update_queue(session, team, body, actor, state.clock.now(),
                                                   state.settings.core.presence_offline)
    _ = translator(actor.language)
    if warnings:
        text = " ".join([_("saved"), *(_("queue.warning." + w.value, queue=team.name) for w in warnings)])
        return redirect("/console/admin/queues", text, "error")
    return redirect("/console/admin/queues", _("saved"))
