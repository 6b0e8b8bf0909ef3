"""Console routes of automatic assignment: the agents' heartbeat and away toggle (a queue's settings: routes.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response

from api.console.routes import redirect, safe_next
from api.console.security import ConsoleUser, CsrfChecked
from api.deps import DbSession, State
from core.assignment import service as assignment
from core.assignment.schemas import PresenceUpdate
from core.errors import ValidationFailedError
from core.i18n import translator

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
