"""The KPI engine: reports over any date range, the tickets behind a figure, and hourly volume counts.

Definitions (docs: /work/briefs/decisions/kpi.md; the API's field descriptions say the same): every figure of a
group is about the tickets CREATED in it (the local day of the report time zone); backlog is the tickets open at
the end of the period.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, literal, or_, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from core.calendars import service as calendars
from core.calendars.business_time import BusinessCalendar, business_time_between
from core.decision.policy import COMPLAINT_INTENT
from core.errors import ValidationFailedError
from core.kpis import repository
from core.kpis.facts import COUNTERS, Sum, TicketFacts, figures
from core.kpis.models import KpiTicketFacts
from core.kpis.schemas import (
    TIME_GROUPS,
    CountBucket,
    CountDimension,
    CountRow,
    GroupBy,
    KpiQuery,
    KpiReport,
    KpiRow,
    KpiTicket,
    KpiTicketPage,
    Metric,
)
from core.tickets.models import AuthorKind, TicketStatus, format_ticket_number

DEFAULT_TIME_ZONE = "Europe/Moscow"
DEFAULT_MAX_DAYS = 366
DEFAULT_CSAT_LOW = 2
FACTS_CHUNK = 500
STATE_NAME = "fold"  # the KPI fold's state row (core/kpis/fold.py)

_DIMENSION_OF = {GroupBy.channel: "channel", GroupBy.queue: "queue", GroupBy.agent: "agent",
                 GroupBy.intent: "intent"}


# -- query checks and periods -------------------------------------------------------------------------------------


EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)


def check_query(query: KpiQuery, *, max_days: int = DEFAULT_MAX_DAYS) -> None:
    """ValidationFailedError (422) with the reason for a range that cannot be reported."""
    for name, value in (("from", query.date_from), ("to", query.date_to)):
        if not EARLIEST <= value <= LATEST:
            raise ValidationFailedError(f"{name} must be between {EARLIEST} and {LATEST}", **{name: value.isoformat()})
    if query.date_from > query.date_to:
        raise ValidationFailedError("from is after to", date_from=query.date_from.isoformat(),
                                    date_to=query.date_to.isoformat())
    if query.agent_id is not None and query.group_by not in TIME_GROUPS:
        raise ValidationFailedError("an agent filter goes with group_by day, week or month",
                                    group_by=query.group_by.value)
    days = (query.date_to - query.date_from).days + 1
    if days > max_days:
        raise ValidationFailedError(f"the range is {days} days; at most {max_days} are reported at once",
                                    days=days, max_days=max_days)


def local_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant a local date begins."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def period_of(day: date, group_by: GroupBy) -> date:
    """The first day of the period `day` belongs to (week: Monday)."""
    if group_by == GroupBy.week:
        return day - timedelta(days=day.weekday())
    if group_by == GroupBy.month:
        return day.replace(day=1)
    return day


def _next_period(start: date, group_by: GroupBy) -> date:
    if group_by == GroupBy.week:
        return start + timedelta(days=7)
    if group_by == GroupBy.month:
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


def periods(query: KpiQuery) -> list[tuple[date, date]]:
    """(first day, last day) of each period of a time grouping, clipped to the range."""
    out = []
    start = period_of(query.date_from, query.group_by)
    while start <= query.date_to:
        following = _next_period(start, query.group_by)
        out.append((max(start, query.date_from), min(following - timedelta(days=1), query.date_to)))
        start = following
    return out


# -- a ticket's facts ---------------------------------------------------------------------------------------------


class _Calendars:
    """The business calendar of each SLA policy, loaded once (a handful of rows)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._by_policy: dict[int, BusinessCalendar | None] | None = None

    async def by_policy(self) -> dict[int, BusinessCalendar | None]:
        if self._by_policy is None:
            policy_calendar = await repository.policy_calendars(self.session)
            rows = await repository.calendars_with_exceptions(self.session, set(policy_calendar.values()))
            built = {row.id: calendars.business_calendar(row) for row in rows}
            self._by_policy = {p: built.get(c) for p, c in policy_calendar.items()}
        return self._by_policy


def _seconds(calendar: BusinessCalendar | None, start: datetime, end: datetime) -> int:
    if calendar is None:
        return max(0, round((end - start).total_seconds()))
    try:
        return max(0, round(business_time_between(calendar, start, end).total_seconds()))
    except ValueError:  # a calendar with no open hours at all: wall clock
        return max(0, round((end - start).total_seconds()))


def _sla_outcome(row: Any, target: str) -> bool | None:
    """Met (True), breached (False), or neither yet / no such target (None)."""
    if row is None:
        return None
    due: datetime | None = getattr(row, f"{target}_due_at")
    met: datetime | None = getattr(row, f"{target}_met_at")
    if f"{target}:breach" in (row.notified or []):
        return False
    if met is not None and due is not None:
        return met <= due
    return None


async def compute_facts(session: AsyncSession, ticket_ids: Sequence[int], *, zone: ZoneInfo,
                        csat_low: int = DEFAULT_CSAT_LOW, cache: _Calendars | None = None) -> dict[int, TicketFacts]:
    """The facts of these tickets from their current state; merged and deleted tickets have none."""
    if not ticket_ids:
        return {}
    policies = await (cache or _Calendars(session)).by_policy()
    rows = [t for t in await repository.tickets(session, ticket_ids) if t.merged_into_id is None]
    ids = [t.id for t in rows]
    if not ids:
        return {}
    agent_ids: dict[int, set[int]] = defaultdict(set)
    with_agent_message: set[int] = set()
    escalated: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for ticket_id, kind, author_id, at, extra in await repository.message_signals(session, ids):
        if kind == AuthorKind.agent:
            with_agent_message.add(ticket_id)
            if author_id is not None:
                agent_ids[ticket_id].add(author_id)
        else:
            escalated[ticket_id].append((at, str((extra or {}).get("reason") or "")))
    slas = await repository.ticket_slas(session, ids)
    scores = await repository.survey_scores(session, ids)
    out: dict[int, TicketFacts] = {}
    for ticket in rows:
        sla = slas.get(ticket.id)
        calendar = policies.get(sla.policy_id) if sla is not None else None
        out[ticket.id] = _facts_of(ticket, len(agent_ids.get(ticket.id, ())), ticket.id in with_agent_message,
                                   escalated.get(ticket.id, []), sla, calendar, ticket.id in scores,
                                   scores.get(ticket.id), zone, csat_low)
    return out


def _facts_of(ticket: Any, agents: int, agent_wrote: bool, escalations: list[tuple[datetime, str]], sla: Any,
              calendar: BusinessCalendar | None, surveyed: bool, score: int | None, zone: ZoneInfo, csat_low: int
              ) -> TicketFacts:
    resolved = ticket.status in (TicketStatus.resolved, TicketStatus.closed) and ticket.resolved_at is not None
    reopened = (ticket.reopen_count or 0) > 0
    frt = _seconds(calendar, ticket.created_at, ticket.first_response_at) if ticket.first_response_at else None
    res = _seconds(calendar, ticket.created_at, ticket.resolved_at) if resolved else None
    return TicketFacts(
        ticket_id=ticket.id, created_at=ticket.created_at, day=ticket.created_at.astimezone(zone).date(),
        resolved_day=ticket.resolved_at.astimezone(zone).date() if resolved else None,
        resolved_at=ticket.resolved_at if resolved else None,
        channel=ticket.channel, queue_id=ticket.team_id, agent_id=ticket.assignee_id, intent=ticket.intent,
        resolved=resolved, reopened=reopened, fcr=resolved and not reopened and agents <= 1,
        contained=resolved and bool(ticket.resolved_by_bot) and not agent_wrote,
        handoff=bool(escalations) or agent_wrote, complaint=ticket.intent == COMPLAINT_INTENT,
        frt_s=frt, res_s=res, sla_fr=_sla_outcome(sla, "first_response"), sla_res=_sla_outcome(sla, "resolution"),
        csat_sent=surveyed, csat_score=score, csat_low=score is not None and score <= csat_low,
        escalations=tuple(escalations),
    )


# -- the report ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    """Which time zone the aggregates are kept in and up to when they hold every change."""

    time_zone: str
    as_of: datetime | None


async def freshness(session: AsyncSession, time_zone: str) -> Freshness:
    """The aggregates' zone (the configured one until the fold has run) and as-of moment."""
    state = await repository.read_state(session, STATE_NAME)
    if state is None:
        return Freshness(time_zone, None)
    as_of = state.data.get("as_of")
    return Freshness(state.data.get("time_zone") or time_zone,
                     datetime.fromisoformat(as_of) if isinstance(as_of, str) else None)


_N = len(COUNTERS)


def _add_row(target: Sum, row: Any) -> None:
    """Add a rollup row read by repository.rollups (grain, period, key, counters..., frt, res)."""
    target.add_row(zip(COUNTERS, row[3:3 + _N], strict=True), row[3 + _N], row[4 + _N])


async def report(session: AsyncSession, query: KpiQuery, *, time_zone: str = DEFAULT_TIME_ZONE,
                 max_days: int = DEFAULT_MAX_DAYS, csat_low: int = DEFAULT_CSAT_LOW,
                 now: datetime | None = None) -> KpiReport:
    """The KPI figures of `query`'s range (local dates, inclusive), in total and per group, read from the
    aggregates the KPI job keeps (core/kpis/fold.py): a few hundred small rows, whatever the range.

    Args:
        time_zone: the configured report time zone (CoreSettings.kpi_time_zone); the report is in the zone the
            aggregates were built in, which is this one unless it changed since the last rebuild (the answer's
            `time_zone` says which).
        max_days: the longest range (422 beyond, as for from > to).
        csat_low: unused here (the fold applies it); kept so callers pass the same settings to every function.
        now: unused (`as_of` comes from the aggregates); kept for the callers' symmetry.
    """
    del csat_low, now
    check_query(query, max_days=max_days)
    fresh = await freshness(session, time_zone)
    first, last = query.date_from, query.date_to
    after_last = last + timedelta(days=1)
    groups: dict[str | None, Sum] = defaultdict(Sum)
    rows: list[KpiRow] = []
    if query.group_by in TIME_GROUPS:
        where = (repository.cover(first, last) if query.group_by == GroupBy.month
                 else repository.day_range(first, last))
        # One agent's figures are the agent dimension's rows of that agent; everyone's are "all".
        dimension, only = ("agent", str(query.agent_id)) if query.agent_id is not None else ("all", "")
        for row in await repository.rollups(session, dimension, where, key=only):
            _add_row(groups[period_of(row[1], query.group_by).isoformat()], row)
        open_count = (await repository.open_before(session, dimension, first)).get(only, 0)
        balance = await repository.daily_balance(session, first, last, dimension, only)
        day = first
        for period_first, period_last in periods(query):
            while day <= period_last:
                open_count += balance.get(day, 0)
                day += timedelta(days=1)
            key = period_of(period_first, query.group_by).isoformat()
            rows.append(KpiRow(key=key, label=key, **figures(groups.get(key) or Sum(), open_count)))
        totals = Sum()
        for cell in groups.values():
            totals.add(cell)
        return KpiReport(date_from=first, date_to=last, group_by=query.group_by, time_zone=fresh.time_zone,
                         as_of=fresh.as_of, totals=KpiRow(**figures(totals, open_count)), groups=rows)

    dimension = _DIMENSION_OF[query.group_by]
    for row in await repository.rollups(session, dimension, repository.cover(first, last)):
        _add_row(groups[row[2] or None], row)
    open_at_end = {(k or None): n for k, n in (await repository.open_before(session, dimension, after_last)).items()}
    internal = set(groups) | {k for k, n in open_at_end.items() if n}
    shown = await present_keys(session, query.group_by, internal)
    totals = Sum()
    for group in sorted(internal, key=lambda k: (k is None, shown[k][1] or "")):
        cell = groups.get(group) or Sum()
        totals.add(cell)
        public, label = shown[group]
        rows.append(KpiRow(key=public, label=label, **figures(cell, open_at_end.get(group, 0))))
    return KpiReport(date_from=first, date_to=last, group_by=query.group_by, time_zone=fresh.time_zone,
                     as_of=fresh.as_of, totals=KpiRow(**figures(totals, sum(open_at_end.values()))), groups=rows)


async def present_keys(session: AsyncSession, group_by: GroupBy, keys: Iterable[str | None]
                       ) -> dict[str | None, tuple[str | None, str | None]]:
    """Internal group keys (queue and agent ids as text) -> (the key the API shows, a label): a queue is shown by
    its slug and named, an agent by id and named; a deleted queue or agent keeps its id ("#7")."""
    keys = list(keys)
    out: dict[str | None, tuple[str | None, str | None]] = {k: (k, k) for k in keys}
    if group_by == GroupBy.queue:
        teams = await repository.teams(session)
        for k in keys:
            if k is not None:
                slug, name = teams.get(int(k), (f"#{k}", f"#{k}"))
                out[k] = (slug, name)
    elif group_by == GroupBy.agent:
        names = await repository.user_names(session, [int(k) for k in keys if k is not None])
        for k in keys:
            if k is not None:
                out[k] = (k, names.get(int(k), f"#{k}"))
    return out


async def internal_key(session: AsyncSession, group_by: GroupBy, key: str) -> str:
    """The API's group key -> the internal one (a queue's slug -> its id); 422 for a key that cannot be one."""
    if group_by == GroupBy.queue:
        if key.startswith("#") and key[1:].isdigit():
            return key[1:]
        team_id = await repository.team_id_by_slug(session, key)
        if team_id is None:
            raise ValidationFailedError(f"no queue {key!r}", key=key)
        return str(team_id)
    if group_by == GroupBy.agent:
        raw = key[1:] if key.startswith("#") else key
        if not raw.isascii() or not raw.isdigit():
            raise ValidationFailedError(f"an agent key is a user id, not {key!r}", key=key)
        return str(int(raw))
    return key


# -- the tickets behind a figure ----------------------------------------------------------------------------------

F = KpiTicketFacts
_METRIC_WHERE: dict[Metric, ColumnElement[bool] | None] = {
    Metric.tickets: None,
    Metric.resolved: F.resolved.is_(True),
    Metric.resolution: F.resolved.is_(True),
    Metric.unresolved: F.resolved.is_(False),
    Metric.first_response: F.frt_s.is_not(None),
    Metric.fcr: F.fcr.is_(True),
    Metric.not_fcr: and_(F.resolved.is_(True), F.fcr.is_(False)),
    Metric.contained: F.contained.is_(True),
    Metric.handoff: F.handoff.is_(True),
    Metric.complaint: F.complaint.is_(True),
    Metric.reopen: F.reopened.is_(True),
    Metric.sla_first_response_met: F.sla_fr.is_(True),
    Metric.sla_first_response_breached: F.sla_fr.is_(False),
    Metric.sla_resolution_met: F.sla_res.is_(True),
    Metric.sla_resolution_breached: F.sla_res.is_(False),
    Metric.csat: F.csat_score.is_not(None),
    Metric.csat_low: F.csat_low.is_(True),
}
_DIMENSION_COLUMN = {GroupBy.channel: F.channel, GroupBy.queue: F.queue_id, GroupBy.agent: F.agent_id,
                     GroupBy.intent: F.intent}


def _ticket_read(row: KpiTicketFacts) -> KpiTicket:
    return KpiTicket(id=row.ticket_id, number=format_ticket_number(row.ticket_id), created_at=row.created_at,
                     channel=row.channel, queue_id=row.queue_id, agent_id=row.agent_id, intent=row.intent,
                     resolved_at=row.resolved_at, first_response_s=row.frt_s, resolution_s=row.res_s,
                     reopened=row.reopened, csat_score=row.csat_score)


async def tickets_behind(session: AsyncSession, query: KpiQuery, key: str | None, metric: Metric | str, *,
                         after: int | None = None, limit: int = 50, time_zone: str = DEFAULT_TIME_ZONE,
                         max_days: int = DEFAULT_MAX_DAYS, csat_low: int = DEFAULT_CSAT_LOW) -> KpiTicketPage:
    """The tickets that make `metric` of group `key` of the report of `query`, in creation order (day, then id):
    a page of `limit` after ticket id `after` (the previous page's `next_after`). `key` None: the totals; "": the
    group without a queue, agent or intent; a time group's key is its first day (ISO), as the report gives it.
    Backlog's tickets are those open at the end of the range (or of the group's period), created then or before,
    exactly as the backlog figure counts them. Read from the per-ticket facts the KPI job keeps."""
    del time_zone, csat_low
    check_query(query, max_days=max_days)
    try:
        metric = Metric(metric)
    except ValueError:
        raise ValidationFailedError(f"unknown metric {metric!r}", allowed=[m.value for m in Metric]) from None
    if not 1 <= limit <= 500:
        raise ValidationFailedError("limit must be 1..500", limit=limit)
    first, last = query.date_from, query.date_to
    where: list[ColumnElement[bool]] = []
    if query.agent_id is not None:
        where.append(F.agent_id == query.agent_id)
    if key is not None and query.group_by in TIME_GROUPS:
        try:
            period = date.fromisoformat(key)
        except ValueError:
            raise ValidationFailedError(f"key {key!r} is not a date (the first day of a {query.group_by} group)",
                                        key=key) from None
        if period_of(period, query.group_by) != period or not first <= _next_period(period, query.group_by) \
                - timedelta(days=1) or period > last:
            raise ValidationFailedError(f"key {key!r} is not a {query.group_by} of the range", key=key)
        first = max(first, period)
        last = min(last, _next_period(period, query.group_by) - timedelta(days=1))
    elif key == "":  # the group without a queue / agent / intent
        where.append(_DIMENSION_COLUMN[query.group_by].is_(None))
    elif key is not None:
        column = _DIMENSION_COLUMN[query.group_by]
        internal = await internal_key(session, query.group_by, key)
        where.append(column == (int(internal) if query.group_by in (GroupBy.queue, GroupBy.agent) else internal))
    if metric == Metric.backlog:
        where += [F.day <= last, or_(F.resolved_day.is_(None), F.resolved_day > last)]
    else:
        where += [F.day >= first, F.day <= last]
        condition = _METRIC_WHERE[metric]
        if condition is not None:
            where.append(condition)
    if after is not None:  # pages follow the (creation day, id) order the facts index keeps
        after_day = await repository.facts_day(session, after)
        if after_day is None:
            raise ValidationFailedError(f"after={after} is not a ticket of these figures", after=after)
        where.append(tuple_(F.day, F.ticket_id) > tuple_(literal(after_day), literal(after)))
    rows = await repository.facts_page(session, where, limit + 1)
    page = [_ticket_read(r) for r in rows[:limit]]
    return KpiTicketPage(items=page, next_after=page[-1].id if len(rows) > limit else None)


# -- volume counts ------------------------------------------------------------------------------------------------


async def counts(session: AsyncSession, *, dimension: CountDimension | str, start: datetime, end: datetime,
                 bucket: CountBucket | str = CountBucket.hour, time_zone: str = DEFAULT_TIME_ZONE
                 ) -> list[CountRow]:
    """Tickets created and escalations decided per key of `dimension` per bucket, from the hourly volumes the KPI
    job keeps (never the tickets), sorted by (bucket_start, key); buckets without any are left out.

    Hours are whole UTC hours: those starting in [start's hour, end). Day buckets sum them by local day of
    `time_zone` (bucket_start its local midnight, as an aware UTC datetime). `tickets`: tickets created in the
    bucket with that key (their current intent/channel/queue); `escalations`: decisions to hand a ticket with that
    key to people in the bucket. By escalation_reason the key is the decision's reason and both numbers count
    those escalations. Queue keys are slugs; None: no intent/queue/reason."""
    try:
        dimension, bucket = CountDimension(dimension), CountBucket(bucket)
    except ValueError as exc:
        raise ValidationFailedError(str(exc)) from None
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationFailedError("start and end must be timezone-aware")
    if start >= end:
        raise ValidationFailedError("start must be before end")
    zone = ZoneInfo(time_zone)
    first_hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    rows = await repository.hourly(session, dimension.value, first_hour, end)
    slugs: dict[str, str] = {}
    if dimension == CountDimension.queue:  # shown by slug, as the report shows queues
        slugs = {str(i): slug for i, (slug, _) in (await repository.teams(session)).items()}
    table: dict[tuple[datetime, str | None], list[int]] = defaultdict(lambda: [0, 0])
    starts: dict[datetime, datetime] = {}
    for hour, raw_key, tickets, escalations in rows:
        at = starts.get(hour)
        if at is None:
            utc = hour.astimezone(UTC)
            at = starts[hour] = utc if bucket == CountBucket.hour else local_start(utc.astimezone(zone).date(), zone)
        key = raw_key or None
        if key is not None and dimension == CountDimension.queue:
            key = slugs.get(key, f"#{key}")
        cell = table[(at, key)]
        cell[0] += tickets
        cell[1] += escalations
    return [CountRow(key=k, bucket_start=b, tickets=t, escalations=e)
            for (b, k), (t, e) in sorted(table.items(), key=lambda item: (item[0][0], item[0][1] or ""))
            if t or e]


async def hourly_tickets(session: AsyncSession, dimension: CountDimension | str, *,
                         hours: Collection[datetime] | None = None, start: datetime | None = None,
                         end: datetime | None = None) -> dict[tuple[str, datetime], int]:
    """(internal key, UTC hour) -> tickets created in that hour with that key, from the hourly volumes the KPI job
    keeps: for just the given `hours` (whole UTC hours; the rising check's few hours of each past day), or for
    every hour in [start, end) (the board's days). Hours without tickets are left out; "" is the key of tickets
    without an intent or queue. Up to date as of the fold's last run (`kpi_fold_seconds`)."""
    try:
        dimension = CountDimension(dimension)
    except ValueError as exc:
        raise ValidationFailedError(str(exc)) from None
    rows = await repository.hourly_tickets(session, dimension.value, hours=hours, start=start, end=end)
    return {(str(key), hour.astimezone(UTC)): int(tickets) for key, hour, tickets in rows}


async def totals(session: AsyncSession, *, dimension: CountDimension | str, start: datetime, end: datetime
                 ) -> dict[str | None, tuple[int, int]]:
    """Per key of `dimension`: (tickets, escalations) over the whole hours in [start's hour, end), summed in the
    database (the same rules and keys as `counts`; a top list over a year reads one row per key)."""
    try:
        dimension = CountDimension(dimension)
    except ValueError as exc:
        raise ValidationFailedError(str(exc)) from None
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationFailedError("start and end must be timezone-aware")
    first_hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    raw = await repository.hourly_totals(session, dimension.value, first_hour, end)
    slugs: dict[str, str] = {}
    if dimension == CountDimension.queue:
        slugs = {str(i): slug for i, (slug, _) in (await repository.teams(session)).items()}
    out: dict[str | None, tuple[int, int]] = {}
    for raw_key, value in raw.items():
        key = raw_key or None
        if key is not None and dimension == CountDimension.queue:
            key = slugs.get(key, f"#{key}")
        if value != (0, 0):
            out[key] = value
    return out
