"""KPI reports for supervisors and admins: the figures as JSON, CSV or XLSX, and the tickets behind a figure."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import DbSession, State
from api.keys import ReportsReader
from api.openapi import Responses, error
from core.kpis import export
from core.kpis import service as kpis
from core.kpis.schemas import FIELD_DOCS, GroupBy, KpiQuery, KpiReport, KpiTicketPage, Metric

router = APIRouter(prefix="/reports", tags=["reports"])

_RANGE_422: Responses = {422: error(
    "A bad date, from after to, a range longer than the limit (kpi_max_range_days, 366 days by default), an unknown "
    "group_by, metric or format; details say which")}
_DEFINITIONS = "\n".join(f"- `{name}`: {text}" for name, text in FIELD_DOCS.items())

From = Annotated[date, Query(alias="from", description="First local date of the range (YYYY-MM-DD), inclusive.")]
To = Annotated[date, Query(alias="to", description="Last local date of the range (YYYY-MM-DD), inclusive.")]
Group = Annotated[GroupBy, Query(description="day, week (Monday first), month, channel, queue, agent or intent.")]
AgentFilter = Annotated[int | None, Query(ge=1, le=2**31 - 1, description=(
    "Only this agent's tickets (with group_by day, week or month: one agent's figures over time)"))]


@router.get("/kpis", response_model=KpiReport, responses={
    **_RANGE_422,
    200: {"content": {"text/csv": {}, export.XLSX_TYPE: {}},
          "description": "The report (JSON), or with format=csv|xlsx the same table as a file"}},
    description="KPI figures of the tickets created in the range (local days of the report time zone, "
                "`kpi_time_zone`, Europe/Moscow by default), in total and per group. Every figure of a group is about "
                "the tickets created in it; backlog is counted at the end of each period. Figures come from "
                "aggregates the KPI job keeps up to date every few seconds (`as_of`).\n\n" + _DEFINITIONS)
async def kpi_report(session: DbSession, state: State, caller: ReportsReader, date_from: From, date_to: To,
                     group_by: Group = GroupBy.day, agent_id: AgentFilter = None,
                     format: Annotated[Literal["json", "csv", "xlsx"], Query(
                         description="json (default), csv or xlsx; file column headers in the caller's language "
                                     "(RU/EN)")] = "json",
                     ) -> KpiReport | Response:
    core = state.settings.core
    query = KpiQuery(date_from=date_from, date_to=date_to, group_by=group_by, agent_id=agent_id)
    report = await kpis.report(session, query, time_zone=core.kpi_time_zone, max_days=core.kpi_max_range_days,
                               csat_low=core.csat_low_score, now=state.clock.now())
    if format == "json":
        return report
    language = caller.user.language if caller.user is not None else "en"
    body = export.to_csv(report, language) if format == "csv" else export.to_xlsx(report, language)
    media = "text/csv; charset=utf-8" if format == "csv" else export.XLSX_TYPE
    return Response(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{export.filename(report, format)}"'})


@router.get("/kpis/tickets", response_model=KpiTicketPage, responses={**_RANGE_422})
async def kpi_tickets(session: DbSession, state: State, _caller: ReportsReader, date_from: From, date_to: To,
                      metric: Annotated[Metric, Query(description="The figure: tickets, resolved, reopen, "
                                                                  "sla_first_response_breached, csat_low, ...")],
                      group_by: Group = GroupBy.day, agent_id: AgentFilter = None,
                      key: Annotated[str | None, Query(max_length=100, description=(
                          "The group's key as the report gives it (a time group: its first day); none: the "
                          "totals"))] = None,
                      after: Annotated[int | None, Query(ge=0, le=2**31 - 1, description=(
                          "next_after of the previous page"))] = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 50) -> KpiTicketPage:
    """The tickets behind one figure of the report with the same from/to/group_by, in creation order (day, then
    id), a page at a time: `after` is the previous page's `next_after`."""
    core = state.settings.core
    query = KpiQuery(date_from=date_from, date_to=date_to, group_by=group_by, agent_id=agent_id)
    return await kpis.tickets_behind(session, query, key, metric, after=after, limit=limit,
                                     time_zone=core.kpi_time_zone, max_days=core.kpi_max_range_days,
                                     csat_low=core.csat_low_score)
