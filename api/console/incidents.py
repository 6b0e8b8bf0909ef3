"""Console → Incidents: the list (open first), the form to open one (area and/or customer ids, intents, RU/EN
message), and an incident's page with its linked appeals and the resolve form. Supervisors; every action audited
(core/incidents)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from api.console.render import render
from api.console.routes import redirect
from api.console.security import ConsoleSupervisor, CsrfChecked
from api.deps import DbSession, State
from core.db.base import MAX_ID, parse_id
from core.errors import DomainError, NotFoundError
from core.events import discard_pending
from core.i18n import translator
from core.incidents import service as incidents
from core.incidents.models import IncidentStatus
from core.incidents.schemas import INTENT_PATTERN, IncidentCreate, IncidentResolve

router = APIRouter(prefix="/console/incidents", include_in_schema=False)
PAGE = "/console/incidents"


def _reason(exc: DomainError | ValidationError) -> str:
    if isinstance(exc, DomainError):
        return exc.message
    return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())


@router.get("")
async def incidents_page(request: Request, session: DbSession, _user: ConsoleSupervisor,
                         alert_id: str | None = None, intent: str | None = None) -> Response:
    """`alert_id` and `intent`: the form opened from a rising-problem alert (Problems, the board)."""
    open_ = await incidents.page(session, IncidentStatus.open, None, 100)
    resolved = await incidents.page(session, IncidentStatus.resolved, None, 50)
    alert = parse_id(alert_id) if alert_id else None
    shown_intent = intent if intent and re.fullmatch(INTENT_PATTERN, intent) else ""
    return render(request, "incidents.html", {"open": open_, "resolved": resolved, "alert_id": alert,
                                              "intent": shown_intent})


@router.post("", dependencies=[CsrfChecked])
async def open_incident(session: DbSession, state: State, actor: ConsoleSupervisor,
                        title: Annotated[str, Form()] = "", intents_: Annotated[str, Form(alias="intents")] = "",
                        area: Annotated[str, Form()] = "", customers: Annotated[str, Form()] = "",
                        message_en: Annotated[str, Form()] = "", message_ru: Annotated[str, Form()] = "",
                        notify: Annotated[str, Form()] = "", alert_id: Annotated[str, Form()] = "") -> Response:
    _ = translator(actor.language)
    try:
        ids = [int(v) for v in re.split(r"[\s,;]+", customers.strip()) if v]
        body = IncidentCreate.model_validate({
            "title": title, "message_en": message_en, "message_ru": message_ru,
            "intents": [v for v in re.split(r"[\s,;]+", intents_.strip()) if v], "area": area or None,
            "customers": ids, "notify_affected": notify == "on", "alert_id": parse_id(alert_id) if alert_id else None})
        incident = await incidents.open_incident(session, body, actor=actor, via_key=None, now=state.clock.now())
    except ValueError as exc:  # int() of a customer id, or the schema's checks
        await session.rollback()
        reason = _reason(exc) if isinstance(exc, ValidationError) else _("incident.bad_customer_ids")
        return redirect(PAGE, _("incident.open_failed", reason=reason), "error")
    except DomainError as exc:
        await session.rollback()
        discard_pending(session)
        return redirect(PAGE, _("incident.open_failed", reason=_reason(exc)), "error")
    return redirect(f"{PAGE}/{incident.id}", _("incident.opened", affected=incident.affected_count))


@router.get("/{incident_id}")
async def incident_page(request: Request, session: DbSession, _user: ConsoleSupervisor, incident_id: int
                        ) -> Response:
    if not 0 < incident_id <= MAX_ID:
        raise NotFoundError(f"incident {incident_id} not found")
    return render(request, "incident.html", {"incident": await incidents.detail(session, incident_id)})


@router.post("/{incident_id}/resolve", dependencies=[CsrfChecked])
async def resolve_incident(session: DbSession, state: State, actor: ConsoleSupervisor, incident_id: int,
                           resolution_en: Annotated[str, Form()] = "",
                           resolution_ru: Annotated[str, Form()] = "") -> Response:
    _ = translator(actor.language)
    target = f"{PAGE}/{incident_id}"
    try:
        body = IncidentResolve(resolution_en=resolution_en or None, resolution_ru=resolution_ru or None)
        await incidents.resolve(session, incident_id, body, actor=actor, via_key=None, now=state.clock.now())
    except (DomainError, ValidationError) as exc:
        await session.rollback()
        discard_pending(session)
        return redirect(target if not isinstance(exc, NotFoundError) else PAGE,
                        _("incident.resolve_failed", reason=_reason(exc)), "error")
    return redirect(target, _("incident.resolved_saved"))
