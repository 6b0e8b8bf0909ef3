"""The reports page: KPI charts and table over a date range and a grouping, the tickets behind any figure, the
same figures as CSV/XLSX, and one agent's page over time. Supervisors and admins.

Every figure comes from the KPI engine (`core.kpis.service`): the page parses the query, asks for one report,
and draws it. A query the page cannot take (a date that is no date, from after to, a range too long, an unknown
grouping or metric) is drawn as the page with the form as typed and the reason, status 422 - never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote_plus, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup, escape

from api.console import charts
from api.console.render import SECURITY_HEADERS, render
from api.console.security import ConsoleSupervisor
from api.deps import DbSession, State
from api.state import AppState
from core.db.base import parse_id
from core.errors import DomainError
from core.i18n import Translator, translator
from core.i18n import formats as fmt
from core.kpis import export as kpi_export
from core.kpis import service as kpis
from core.kpis.schemas import KPI_FIELDS, TIME_GROUPS, GroupBy, KpiQuery, KpiReport, KpiTicketPage, Metric
from core.users import service as users

router = APIRouter(prefix="/console/reports", include_in_schema=False)
PAGE = "/console/reports"
PRESETS = ("7", "30", "90", "365", "this_month", "last_month")
DEFAULT_PRESET = "30"
DRILL_PAGE = 50
SCORES = ("1", "2", "3", "4", "5")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# Which tickets make each figure of the table (the drill-down's metric), and how the figure is worded.
FIELD_METRIC: dict[str, Metric] = {
    "tickets": Metric.tickets, "resolved": Metric.resolved,
    "first_response_median_s": Metric.first_response, "first_response_p90_s": Metric.first_response,
    "resolution_median_s": Metric.resolution, "resolution_p90_s": Metric.resolution,
    "fcr_rate": Metric.fcr, "containment_rate": Metric.contained, "handoff_rate": Metric.handoff,
    "complaint_rate": Metric.complaint, "sla_first_response_met_rate": Metric.sla_first_response_met,
    "sla_resolution_met_rate": Metric.sla_resolution_met, "csat_avg": Metric.csat, "csat_responses": Metric.csat,
    "reopen_rate": Metric.reopen, "backlog": Metric.backlog,
}
FIELD_KIND: dict[str, str] = {
    "tickets": "count", "resolved": "count", "csat_responses": "count", "backlog": "count",
    "first_response_median_s": "duration", "first_response_p90_s": "duration", "resolution_median_s": "duration",
    "resolution_p90_s": "duration", "csat_avg": "score",
}
# A drill-down offers the figure's counterpart too (met / breached, resolved / not resolved...).
COUNTERPART: dict[Metric, Metric] = {
    Metric.resolved: Metric.unresolved, Metric.unresolved: Metric.resolved, Metric.fcr: Metric.not_fcr,
    Metric.not_fcr: Metric.fcr, Metric.sla_first_response_met: Metric.sla_first_response_breached,
    Metric.sla_first_response_breached: Metric.sla_first_response_met,
    Metric.sla_resolution_met: Metric.sla_resolution_breached,
    Metric.sla_resolution_breached: Metric.sla_resolution_met, Metric.csat: Metric.csat_low,
    Metric.csat_low: Metric.csat,
}


class BadQueryError(Exception):
    """A query parameter the page cannot take; the message says which and why (in the reader's language)."""


@dataclass
class ReportForm:
    """The range and grouping as the form shows them (as typed when refused)."""

    date_from: str
    date_to: str
    group_by: str
    preset: str | None = None
    agent_id: int | None = None
    error: str | None = None
    drill_base: str | None = None

    def params(self, **extra: Any) -> dict[str, str]:
        values = {"from": self.date_from, "to": self.date_to, "group_by": self.group_by}
        values.update({k: str(v) for k, v in extra.items() if v is not None})
        return values

    def url(self, path: str = PAGE, **extra: Any) -> str:
        return f"{path}?{urlencode(self.params(**extra))}"


def report_zone(state: AppState) -> str:
    """The report time zone: days, weeks and months are counted in it (CoreSettings.kpi_time_zone)."""
    return state.settings.core.kpi_time_zone


def engine_options(state: AppState) -> dict[str, Any]:
    core = state.settings.core
    return {"time_zone": core.kpi_time_zone, "max_days": core.kpi_max_range_days, "csat_low": core.csat_low_score}


def today_in(state: AppState) -> date:
    return state.clock.now().astimezone(ZoneInfo(report_zone(state))).date()


def preset_range(preset: str, today: date) -> tuple[date, date]:
    """The days a preset covers, today included ("this month" runs to today; "last month" is whole)."""
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    return today - timedelta(days=int(preset) - 1), today


def _date(value: str, name: str, _: Translator) -> date:
    if not _DATE.fullmatch(value):
        raise BadQueryError(_("reports.bad_date", name=name, value=value[:40]))
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadQueryError(_("reports.bad_date", name=name, value=value[:40])) from None


def parse_query(params: Mapping[str, str], today: date, _: Translator, *, default_group: str = "day"
                ) -> tuple[ReportForm, KpiQuery | None]:
    """The page's parameters -> the KPI query, or the form with the reason it was refused (query None)."""
    preset = params.get("preset") or None
    group_by = params.get("group_by") or default_group
    form = ReportForm(params.get("from", ""), params.get("to", ""), group_by, preset)
    try:
        if preset is not None:
            if preset not in PRESETS:
                raise BadQueryError(_("reports.bad_preset", value=preset[:40]))
            start, end = preset_range(preset, today)
            form.date_from, form.date_to = start.isoformat(), end.isoformat()
        elif not form.date_from and not form.date_to:
            form.preset = DEFAULT_PRESET
            start, end = preset_range(DEFAULT_PRESET, today)
            form.date_from, form.date_to = start.isoformat(), end.isoformat()
        else:
            start = _date(form.date_from, "from", _)
            end = _date(form.date_to, "to", _) if form.date_to else today
            form.date_to = end.isoformat()
        if group_by not in GroupBy.__members__:
            raise BadQueryError(_("reports.bad_group", value=group_by[:40],
                                  allowed=", ".join(g.value for g in GroupBy)))
        if start > end:
            raise BadQueryError(_("reports.from_after_to", start=start.isoformat(), end=end.isoformat()))
        return form, KpiQuery(date_from=start, date_to=end, group_by=GroupBy(group_by))
    except BadQueryError as exc:
        form.error = str(exc)
        return form, None


# --- words and numbers --------------------------------------------------------------------------------------------


def figure_text(name: str, value: Any, _: Translator) -> str:
    """A KPI field's value as people read it."""
    kind = FIELD_KIND.get(name, "rate")
    if kind == "count":
        return fmt.number(value, _.language)
    if kind == "duration":
        return fmt.duration(value, _)
    if kind == "score":
        return fmt.fixed(value, _.language, digits=2)
    return fmt.percent(value, _.language)


@dataclass
class Names:
    """Readable names of group keys: queue and agent ids, channels, intents, periods."""

    agents: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)

    def label(self, group_by: GroupBy, key: str | None, _: Translator) -> str:
        if key is None:
            return _("reports.key_none." + group_by.value)
        if group_by in TIME_GROUPS:
            return period_label(key, group_by, _)
        if group_by == GroupBy.agent:
            return self.agents.get(key, f"#{key}")
        if group_by == GroupBy.queue:
            return self.queues.get(key, key)  # the engine's queue keys are slugs
        if group_by == GroupBy.channel:
            return _.get("channel." + key) or key
        return key


def period_label(key: str, group_by: GroupBy, _: Translator) -> str:
    """A time group's key (its first day) as a short label: `30.11`, `нед. 23.11`, `ноя 2026`."""
    try:
        day = date.fromisoformat(key)
    except ValueError:
        return key
    if group_by == GroupBy.month:
        return _("reports.month_label", month=_("month.short." + str(day.month)), year=day.year)
    text = _("reports.day_label", d=f"{day.day:02d}", m=f"{day.month:02d}")
    return _("reports.week_label", day=text) if group_by == GroupBy.week else text


async def names_of(session: DbSession) -> Names:
    teams = await users.list_teams(session)
    return Names(agents={str(u.id): u.name for u in await users.list_users(session)},
                 queues={str(t.id): t.name for t in teams} | {t.slug: t.name for t in teams})


# --- the page -----------------------------------------------------------------------------------------------------


def drill_url(form: ReportForm, key: str | None, metric: Metric) -> str:
    """The drill-down of one figure (built for thousands of cells: the range's part is encoded once per form)."""
    if form.drill_base is None:
        form.drill_base = form.url(f"{PAGE}/tickets", agent=form.agent_id)
    tail = f"&metric={metric.value}"
    return f"{form.drill_base}&key={quote_plus(key)}{tail}" if key is not None else form.drill_base + tail


def _charts(report: KpiReport, form: ReportForm, names: Names, _: Translator) -> list[tuple[str, str, Markup]]:
    """(id, title, svg) of every chart the report draws: over time for day/week/month, per group otherwise."""
    groups, group_by = report.groups, report.group_by
    labels = [names.label(group_by, g.key, _) for g in groups]
    dur: Callable[[float], str] = lambda v: fmt.duration(v, _)  # noqa: E731
    pct: Callable[[float], str] = lambda v: fmt.percent(v, _.language, digits=0)  # noqa: E731
    num: Callable[[float], str] = lambda v: fmt.number(v, _.language)  # noqa: E731
    out: list[tuple[str, str, Markup]] = []
    if group_by in TIME_GROUPS:
        links = [drill_url(form, g.key, Metric.tickets) for g in groups]
        contained = [round((g.containment_rate or 0) * g.tickets) for g in groups]
        out.append(("volume", _("reports.chart.volume"), charts.stacked(labels, [
            charts.Stack(_("reports.series.contained"), contained, "ok"),
            charts.Stack(_("reports.series.resolved_people"),
                         [max(0, g.resolved - c) for g, c in zip(groups, contained, strict=True)], "default"),
            charts.Stack(_("reports.series.unresolved"), [max(0, g.tickets - g.resolved) for g in groups], "warn"),
        ], title=_("reports.chart.volume"), fmt=num, links=links)))
        for chart_id, median, p90 in (("frt", "first_response_median_s", "first_response_p90_s"),
                                      ("resolution", "resolution_median_s", "resolution_p90_s")):
            metric = FIELD_METRIC[median]
            out.append((chart_id, _(f"reports.chart.{chart_id}"), charts.lines(labels, [
                charts.Series(_("reports.series.median"), [getattr(g, median) for g in groups]),
                charts.Series(_("reports.series.p90"), [getattr(g, p90) for g in groups], "warn", dashed=True),
            ], title=_(f"reports.chart.{chart_id}"), fmt=dur, axis="duration",
                links=[drill_url(form, g.key, metric) for g in groups])))
        out.append(("containment", _("reports.chart.containment"), charts.lines(labels, [
            charts.Series(_("reports.kpi.containment_rate"), [g.containment_rate for g in groups], "ok"),
            charts.Series(_("reports.kpi.handoff_rate"), [g.handoff_rate for g in groups], "default", dashed=True),
        ], title=_("reports.chart.containment"), fmt=pct, scale=1.0, area=True,
            links=[drill_url(form, g.key, Metric.contained) for g in groups])))
        out.append(("csat", _("reports.chart.csat"), charts.lines(labels, [
            charts.Series(_("reports.kpi.csat_avg"), [g.csat_avg for g in groups], "default"),
        ], title=_("reports.chart.csat"), fmt=lambda v: fmt.fixed(v, _.language, digits=0), scale=5.0, steps=5,
            tip=lambda v: fmt.fixed(v, _.language, digits=2),
            links=[drill_url(form, g.key, Metric.csat) for g in groups])))
        out.append(("sla", _("reports.chart.sla"), charts.lines(labels, [
            charts.Series(_("reports.kpi.sla_first_response_met_rate"),
                          [g.sla_first_response_met_rate for g in groups]),
            charts.Series(_("reports.kpi.sla_resolution_met_rate"), [g.sla_resolution_met_rate for g in groups], "ok",
                          dashed=True),
        ], title=_("reports.chart.sla"), fmt=pct, scale=1.0,
            links=[drill_url(form, g.key, Metric.sla_first_response_breached) for g in groups])))
    else:
        def bars(name: str, kind: Callable[[Any], str], scale: float | None = None,
                 factor: float = 1.0) -> Markup:
            return charts.hbars([charts.Bar(label, (getattr(g, name) or 0) * factor,
                                            caption=kind(getattr(g, name)) if getattr(g, name) is not None
                                            else fmt.DASH)
                                 for label, g in zip(labels, groups, strict=True)],
                                title=_("reports.kpi." + name), scale=scale, width=640, caption_width=100)

        def as_dur(v: Any) -> str:
            return fmt.duration(v, _)

        def as_pct(v: Any) -> str:
            return fmt.percent(v, _.language)

        out.append(("volume", _("reports.chart.volume"), bars("tickets", lambda v: fmt.number(v, _.language))))
        out.append(("frt", _("reports.chart.frt"), bars("first_response_median_s", as_dur)))
        out.append(("resolution", _("reports.chart.resolution"), bars("resolution_median_s", as_dur)))
        out.append(("containment", _("reports.chart.containment"),
                    bars("containment_rate", as_pct, scale=100.0, factor=100.0)))
        out.append(("csat", _("reports.chart.csat"),
                    bars("csat_avg", lambda v: fmt.fixed(v, _.language, digits=2), scale=5.0)))
        out.append(("sla", _("reports.chart.sla"),
                    bars("sla_first_response_met_rate", as_pct, scale=100.0, factor=100.0)))
    return out


def _distribution(report: KpiReport, form: ReportForm, low: int, _: Translator) -> Markup:
    counts = [(_("reports.score", n=int(s)), report.totals.csat_distribution.get(s, 0)) for s in SCORES]
    links: list[str | None] = [drill_url(form, None, Metric.csat_low if int(s) <= low else Metric.csat)
                               for s in SCORES]
    return charts.distribution(
        counts, title=_("reports.chart.csat_distribution"), tones=["danger", "warn", "muted", "ok", "ok"],
        caption=lambda n, share: f"{fmt.number(n, _.language)} · {fmt.percent(share, _.language, digits=0)}",
        links=links)


def _cell(name: str, value: Any, url: str | None, _: Translator) -> str:
    text = escape(figure_text(name, value, _))
    inner = f'<a href="{escape(url)}">{text}</a>' if url is not None and value is not None else str(text)
    return f'<td class="num" data-field="{name}">{inner}</td>'


def table_body(report: KpiReport, form: ReportForm, names: Names, _: Translator) -> Markup:
    """The KPI table's rows and totals, every figure a link to its tickets (built here rather than in the
    template: a year by day is ~6,000 cells, and the template's per-cell calls took most of the page's time)."""
    parts = ["<tbody>"]
    for g in report.groups:
        key = g.key if g.key is not None else ""
        label = escape(names.label(report.group_by, g.key, _))
        if report.group_by == GroupBy.agent and g.key:
            agent_url = f"{PAGE}/agents/{quote_plus(g.key)}?" + urlencode(
                {"from": form.date_from, "to": form.date_to, "group_by": "week"})
            label = Markup(f'<a href="{escape(agent_url)}">{label}</a>')  # noqa: S704  (escaped parts)
        parts.append(f'<tr data-key="{escape(key)}"><th scope="row">{label}</th>')
        parts.extend(_cell(f, getattr(g, f), drill_url(form, key, FIELD_METRIC[f]), _) for f in KPI_FIELDS)
        parts.append("</tr>")
    if not report.groups:
        parts.append(f'<tr><td colspan="{len(KPI_FIELDS) + 1}" class="muted">{escape(_("reports.no_groups"))}'
                     "</td></tr>")
    parts.append(f'</tbody><tfoot><tr data-key="totals"><th scope="row">{escape(_("reports.totals"))}</th>')
    parts.extend(_cell(f, getattr(report.totals, f), drill_url(form, None, FIELD_METRIC[f]), _) for f in KPI_FIELDS)
    parts.append("</tr></tfoot>")
    return Markup("".join(parts))  # noqa: S704  (every label, text and link is escaped above)


TILES = ("tickets", "resolved", "first_response_median_s", "resolution_median_s", "containment_rate", "fcr_rate",
         "csat_avg", "sla_first_response_met_rate", "sla_resolution_met_rate", "backlog")


async def _report_page(request: Request, session: DbSession, state: AppState, form: ReportForm,
                       query: KpiQuery | None) -> Response:
    _ = translator(getattr(request.state, "console_viewer", None) and request.state.console_viewer.language)
    names = await names_of(session)
    report: KpiReport | None = None
    if query is not None:
        try:
            report = await kpis.report(session, query, now=state.clock.now(), **engine_options(state))
        except DomainError as exc:
            form.error = exc.message
    agent = str(form.agent_id) if form.agent_id is not None else None
    context: dict[str, Any] = {
        "form": form, "report": report, "presets": PRESETS, "groups": [g.value for g in GroupBy],
        "time_groups": [g.value for g in TIME_GROUPS], "fields": KPI_FIELDS, "tiles": TILES,
        "agent": agent, "agent_name": names.agents.get(agent or "", f"#{agent}"),
    }
    if report is not None:
        context.update(
            charts=_charts(report, form, names, _), distribution=_distribution(report, form,
                                                                               state.settings.core.csat_low_score, _),
            text=lambda name, value: figure_text(name, value, _),
            drill=lambda key, name: drill_url(form, key, FIELD_METRIC[name]),
            table_body=table_body(report, form, names, _),
            empty=report.totals.tickets == 0 and report.totals.backlog == 0)
    return render(request, "reports.html", context, status_code=422 if form.error else 200)


@router.get("")
async def reports_page(request: Request, session: DbSession, state: State, user: ConsoleSupervisor) -> Response:
    _ = translator(user.language)
    form, query = parse_query(request.query_params, today_in(state), _)
    return await _report_page(request, session, state, form, query)


def _agent_query(form: ReportForm, query: KpiQuery | None, agent: int, _: Translator) -> KpiQuery | None:
    """An agent's page goes over time (day/week/month, any range the engine takes): the engine's report of that
    agent (`KpiQuery.agent_id`), one call whatever the range and grouping."""
    if query is not None and query.group_by not in TIME_GROUPS:
        form.error = _("reports.agent_time_only")
        return None
    return query.model_copy(update={"agent_id": agent}) if query is not None else None


@router.get("/agents/{agent_id}")
async def agent_page(agent_id: str, request: Request, session: DbSession, state: State,
                     user: ConsoleSupervisor) -> Response:
    """One agent over time (day/week/month): the engine's report filtered by the agent."""
    _ = translator(user.language)
    ident = parse_id(agent_id)
    form, query = parse_query(request.query_params, today_in(state), _, default_group="week")
    if ident is None:
        form.error, query = _("reports.bad_agent", value=agent_id[:40]), None
    else:
        await users.get(session, ident)  # 404 for an unknown agent
        form.agent_id = ident
        query = _agent_query(form, query, ident, _)
    return await _report_page(request, session, state, form, query)


# --- drill-down ---------------------------------------------------------------------------------------------------


@router.get("/tickets")
async def tickets_page(request: Request, session: DbSession, state: State, user: ConsoleSupervisor) -> Response:
    """The tickets behind one figure: a group's (or the totals') metric, a page at a time in id order."""
    _ = translator(user.language)
    params = request.query_params
    form, query = parse_query(params, today_in(state), _)
    # No key: the totals; an empty key: the group without a queue / agent / intent.
    metric_name, key = params.get("metric", Metric.tickets.value), params.get("key")
    after_text = params.get("after")
    after = parse_id(after_text) if after_text else None
    agent = parse_id(params.get("agent", "")) if params.get("agent") else None
    form.agent_id = agent
    if form.error is None and metric_name not in Metric.__members__:
        form.error = _("reports.bad_metric", value=metric_name[:40])
    if form.error is None and after_text and after is None:
        form.error = _("reports.bad_after", value=after_text[:40])
    page: KpiTicketPage | None = None
    metric = Metric(metric_name) if metric_name in Metric.__members__ else Metric.tickets
    if form.error is None and query is not None:
        if agent is not None:  # one agent's page: the agent's tickets of the period `key` names (or the range)
            query = _agent_query(form, query, agent, _)
        try:
            if query is not None:
                page = await kpis.tickets_behind(session, query, key, metric, after=after, limit=DRILL_PAGE,
                                                 **engine_options(state))
        except DomainError as exc:
            form.error = exc.message
    names = await names_of(session)
    group_by = query.group_by if query is not None else GroupBy.day
    back = (form.url(f"{PAGE}/agents/{agent}") if agent is not None else form.url())
    return render(request, "reports_tickets.html", {
        "form": form, "page": page, "metric": metric, "key": key, "after": after, "names": names,
        "key_label": names.label(group_by, key or None, _) if key is not None else _("reports.all_groups"),
        "agent_name": names.agents.get(str(agent), "") if agent else None,
        "counterpart": COUNTERPART.get(metric), "back": back,
        "metric_url": lambda m: form.url(f"{PAGE}/tickets", key=key, metric=m.value, agent=agent),
        "next_url": form.url(f"{PAGE}/tickets", key=key, metric=metric.value, agent=agent,
                             after=page.next_after) if page is not None and page.next_after else None,
        "first_url": form.url(f"{PAGE}/tickets", key=key, metric=metric.value, agent=agent) if after else None,
        "duration": lambda s: fmt.duration(s, _),
    }, status_code=422 if form.error else 200)


# --- export -------------------------------------------------------------------------------------------------------


@router.get("/export")
async def export(request: Request, session: DbSession, state: State, user: ConsoleSupervisor) -> Response:
    """The report on screen as a file (`format=csv|xlsx` with the page's own parameters, an agent's page too):
    the same files as GET /reports/kpis?format=..., headers in the reader's language."""
    _ = translator(user.language)
    params = request.query_params
    kind = params.get("format", "csv")
    agent_text = params.get("agent")
    form, query = parse_query(params, today_in(state), _, default_group="week" if agent_text else "day")
    if form.error is None and kind not in ("csv", "xlsx"):
        form.error = _("reports.bad_format", value=kind[:20])
    agent = parse_id(agent_text) if agent_text else None
    if form.error is None and agent_text and agent is None:
        form.error = _("reports.bad_agent", value=agent_text[:40])
    if form.error is None and agent is not None:
        form.agent_id = agent
        query = _agent_query(form, query, agent, _)
    report: KpiReport | None = None
    if form.error is None and query is not None:
        try:
            report = await kpis.report(session, query, now=state.clock.now(), **engine_options(state))
        except DomainError as exc:
            form.error = exc.message
    if report is None:
        return await _report_page(request, session, state, form, None)
    if kind == "xlsx":
        body, media = kpi_export.to_xlsx(report, user.language), kpi_export.XLSX_TYPE
    else:
        body, media = kpi_export.to_csv(report, user.language), "text/csv; charset=utf-8"
    name = kpi_export.filename(report, kind)
    if agent is not None:
        name = name.replace(f".{kind}", f"_agent{agent}.{kind}")
    return Response(body, media_type=media, headers={
        **SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'})
