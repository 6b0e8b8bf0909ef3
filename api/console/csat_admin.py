"""Console: a queue's satisfaction-survey settings (on/off, delay) on the Queues page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response

from api.console.routes import _form_count, redirect, validated
from api.console.security import ConsoleAdmin, CsrfChecked
from api.deps import DbSession
from core.csat import service as csat
from core.csat.schemas import QueueCsatUpdate
from core.i18n import translator
from core.users import service as users

router = APIRouter(prefix="/console", include_in_schema=False)


@router.post("/admin/queues/{slug}/csat", dependencies=[CsrfChecked])
async def update_queue_csat(slug: str, session: DbSession, actor: ConsoleAdmin,
                            csat_enabled: Annotated[str, Form()] = "",
                            csat_delay_minutes: Annotated[str, Form()] = "") -> Response:
    team = await users.team_by_slug(session, slug)
    body: QueueCsatUpdate = validated(QueueCsatUpdate, csat_enabled=csat_enabled == "on",
                                      csat_delay_minutes=_form_count(csat_delay_minutes,
                                                                     default=team.csat_delay_minutes))
    await csat.update_queue(session, team, body, actor)
    return redirect("/console/admin/queues", translator(actor.language)("saved"))
