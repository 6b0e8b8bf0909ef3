"""Admin → Weekly summary: the switch (off by default), who receives it, when it goes next, where from, and the
recent mails with their delivery state. Admins change it; supervisors (its recipients) can look."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from api.console.render import render
from api.console.routes import redirect
from api.console.security import ConsoleAdmin, ConsoleSupervisor, CsrfChecked
from api.deps import DbSession, State
from channels.email.staff import SmtpStaffMailer
from core.i18n import translator
from core.summaries import service as summaries

router = APIRouter(prefix="/console/admin", include_in_schema=False)
PAGE = "/console/admin/summary"


@router.get("/summary")
async def summary_page(request: Request, session: DbSession, state: State, _user: ConsoleSupervisor) -> Response:
    settings = state.settings
    summary = settings.summary.with_zone(settings.core.kpi_time_zone)
    overview = await summaries.overview(session, summary,
                                        SmtpStaffMailer(settings.channels.email).describe(), state.clock.now())
    return render(request, "admin_summary.html", {
        "section": "summary", "overview": overview, "settings": summary,
        "workers_enabled": settings.workers_enabled})


@router.post("/summary", dependencies=[CsrfChecked])
async def summary_switch(session: DbSession, state: State, actor: ConsoleAdmin,
                         enabled: Annotated[str, Form()] = "") -> Response:
    on = enabled == "on"
    await summaries.set_enabled(session, on, actor, state.clock.now())
    _ = translator(actor.language)
    return redirect(PAGE, _("summary.admin.on_saved") if on else _("summary.admin.off_saved"))
