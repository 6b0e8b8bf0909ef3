"""Console → Problems: top intents and escalation reasons with their change, rising-problem alerts, and the clusters of
what the bot did not understand with "make this an intent" for admins (over `core.problems.service`)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from api.console.render import render
from api.console.routes import redirect
from api.console.security import ConsoleAdmin, ConsoleSupervisor, CsrfChecked
from api.deps import DbSession, State
from api.routers.problems import time_zone
from core.errors import DomainError
from core.events import discard_pending
from core.i18n import normalise, translator
from core.nlu_admin import service as nlu_admin
from core.problems import service as problems
from core.problems.schemas import MakeIntent, PeriodQuery, TopDimension, TopQuery
from core.users.models import Role

router = APIRouter(prefix="/console/problems", include_in_schema=False)
DEFAULT_DAYS = 7


def _period(state: State, date_from: str | None, date_to: str | None) -> tuple[PeriodQuery, str | None]:
    """The period typed in the form (default: the last 7 days); an invalid one falls back with its reason."""
    today = state.clock.now().astimezone(ZoneInfo(time_zone(state))).date()
    default = PeriodQuery(date_from=today - timedelta(days=DEFAULT_DAYS - 1), date_to=today)
    if not date_from and not date_to:
        return default, None
    try:
        return PeriodQuery(date_from=date.fromisoformat(date_from or "") if date_from else default.date_from,
                           date_to=date.fromisoformat(date_to or "") if date_to else default.date_to), None
    except ValueError as exc:
        reason = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors()) \
            if isinstance(exc, ValidationError) else str(exc)
        return default, reason


@router.get("")
async def overview(request: Request, session: DbSession, state: State, user: ConsoleSupervisor,
                   date_from: str | None = None, date_to: str | None = None) -> Response:
    query, error = _period(state, date_from, date_to)
    lang = normalise(user.language)
    zone = time_zone(state)
    intents = await problems.top(session, TopQuery(date_from=query.date_from, date_to=query.date_to,
                                                   dimension=TopDimension.intent), time_zone=zone, language=lang)
    reasons = await problems.top(session, TopQuery(date_from=query.date_from, date_to=query.date_to,
                                                   dimension=TopDimension.escalation_reason),
                                 time_zone=zone, language=lang)
    history = await problems.alert_history(session, limit=20)
    return render(request, "problems.html", {
        "query": query, "period_error": error, "intents": intents, "reasons": reasons,
        "active": await problems.active_alerts(session), "history": history.items, "time_zone": zone,
        "settings": state.settings.problems})


@router.get("/clusters")
async def clusters_page(request: Request, session: DbSession, state: State, user: ConsoleSupervisor,
                        date_from: str | None = None, date_to: str | None = None) -> Response:
    query, error = _period(state, date_from, date_to)
    report = await problems.clusters(session, query, state.settings.problems, time_zone=time_zone(state))
    admin = user.role.rank >= Role.admin.rank
    return render(request, "problems_clusters.html", {
        "query": query, "period_error": error, "report": report, "admin": admin,
        "intent_names": await nlu_admin.intent_names(session) if admin else [], "back": period_link(query)})


@router.post("/clusters/intent", dependencies=[CsrfChecked])
async def make_intent(request: Request, session: DbSession, actor: ConsoleAdmin,
                      intent: Annotated[str, Form()] = "", description: Annotated[str, Form()] = "",
                      back: Annotated[str, Form()] = "") -> Response:
    form = await request.form()
    _ = translator(actor.language)
    # `back` is the page's own period query (date_from=...&date_to=...): only those characters go back into a URL.
    target = "/console/problems/clusters" + (f"?{back}" if re.fullmatch(r"[a-z_=&0-9-]{0,80}", back) else "")
    try:
        example_ids = [int(v) for v in form.getlist("example_ids") if isinstance(v, str) and v.isdigit()]
        message_ids = [int(v) for v in str(form.get("message_ids") or "").split(",") if v.strip().isdigit()]
        body = MakeIntent(intent=intent.strip() or " ", example_ids=example_ids, message_ids=message_ids,
                          description=description)
        made = await problems.make_intent(session, body, actor)
    except (DomainError, ValidationError) as exc:
        await session.rollback()
        discard_pending(session)
        reason = exc.message if isinstance(exc, DomainError) else "; ".join(e["msg"] for e in exc.errors())
        return redirect(target, _("problems.make_failed", reason=reason), "error")
    text = _.ngettext("problems.made_intent", len(made.examples_added), intent=made.intent)
    return redirect(target, text)


def period_link(query: PeriodQuery) -> str:
    return urlencode({"date_from": query.date_from.isoformat(), "date_to": query.date_to.isoformat()})
