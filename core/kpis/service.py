"""The KPI engine: reports over any date range, the tickets behind a figure, and hourly volume counts.

Definitions (docs: /work/briefs/decisions/kpi.md; the API's field descriptions say the same): every figure of a
group is about the tickets CREATED in it (the local day of the report time zone); backlog is the tickets open at
the end of the period.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from core.calendars import service as calendars
from core.calendars.business_time import BusinessCalendar, business_time_between
from core.decision.policy import COMPLAINT_INTENT
from core.errors import ValidationFailedError
from core.kpis import repository
from core.kpis.facts import Cell, TicketFacts, contributions, figures
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
from core.sla.models import TicketSla
from core.tickets.models import Ticket, TicketStatus, format_ticket_number

DEFAULT_TIME_ZONE = "Europe/Moscow"
DEFAULT_MAX_DAYS = 366
DEFAULT_CSAT_LOW = 2
FACTS_CHUNK = 500

_DIMENSION_OF = {GroupBy.channel: "channel", GroupBy.queue: "queue", GroupBy.agent: "agent",
                 GroupBy.intent: "intent"}


# -- query checks and periods -------------------------------------------------------------------------------------


def check_query(query: KpiQuery, *, max_days: int = DEFAULT_MAX_DAYS) -> None:
    """ValidationFailedError (422) with the reason for a range that cannot be reported."""
    if query.date_from > query.date_to:
        raise ValidationFailedError("from is after to", date_from=query.date_from.isoformat(),
                                    date_to=query.date_to.isoformat())
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
    """Business calendars of SLA policies, loaded once per call."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._policy_calendar: dict[int, int] | None = None
        self._calendars: dict[int, BusinessCalendar] = {}

    async def of_policy(self, policy_id: int) -> BusinessCalendar | None:
        if self._policy_calendar is None:
            self._policy_calendar = await repository.policy_calendars(self.session)
        calendar_id = self._policy_calendar.get(policy_id)
        if calendar_id is None:
            return None
        if calendar_id not in self._calendars:
            for row in await repository.calendars_with_exceptions(self.session, [calendar_id]):
                self._calendars[row.id] = calendars.business_calendar(row)
        return self._calendars.get(calendar_id)


def _seconds(calendar: BusinessCalendar | None, start: datetime, end: datetime) -> int:
    if calendar is None:
        return max(0, round((end - start).total_seconds()))
    try:
        return max(0, round(business_time_between(calendar, start, end).total_seconds()))
    except ValueError:  # a calendar with no open hours at all: wall clock
        return max(0, round((end - start).total_seconds()))


def _sla_outcome(row: TicketSla | None, target: str) -> bool | None:
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
    cache = cache or _Calendars(session)
    rows = [t for t in await repository.tickets(session, ticket_ids) if t.merged_into_id is None]
    ids = [t.id for t in rows]
    if not ids:
        return {}
    agents = await repository.agents_per_ticket(session, ids)
    with_agent_message = await repository.agent_message_tickets(session, ids)
    escalated: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for ticket_id, at, reason in await repository.escalations(session, ids):
        escalated[ticket_id].append((at, reason))
    slas = await repository.ticket_slas(session, ids)
    surveys = await repository.surveys(session, ids)
    out: dict[int, TicketFacts] = {}
    for ticket in rows:
        out[ticket.id] = await _facts_of(ticket, agents.get(ticket.id, 0), ticket.id in with_agent_message,
                                         escalated.get(ticket.id, []), slas.get(ticket.id), surveys.get(ticket.id),
                                         zone, csat_low, cache)
    return out


async def _facts_of(ticket: Ticket, agents: int, agent_wrote: bool, escalations: list[tuple[datetime, str]],
                    sla: TicketSla | None, survey: Any, zone: ZoneInfo, csat_low: int, cache: _Calendars
                    ) -> TicketFacts:
    calendar = await cache.of_policy(sla.policy_id) if sla is not None else None
    resolved = ticket.status in (TicketStatus.resolved, TicketStatus.closed) and ticket.resolved_at is not None
    reopened = (ticket.reopen_count or 0) > 0
    frt = _seconds(calendar, ticket.created_at, ticket.first_response_at) if ticket.first_response_at else None
    res = _seconds(calendar, ticket.created_at, ticket.resolved_at) if resolved and ticket.resolved_at else None
    score = survey.score if survey is not None else None
    return TicketFacts(
        ticket_id=ticket.id, created_at=ticket.created_at, day=ticket.created_at.astimezone(zone).date(),
        resolved_day=ticket.resolved_at.astimezone(zone).date() if resolved and ticket.resolved_at else None,
        resolved_at=ticket.resolved_at if resolved else None,
        channel=ticket.channel, queue_id=ticket.team_id, agent_id=ticket.assignee_id, intent=ticket.intent,
        resolved=resolved, reopened=reopened, fcr=resolved and not reopened and agents <= 1,
        contained=resolved and ticket.resolved_by_bot and not agent_wrote,
        handoff=bool(escalations) or agent_wrote, complaint=ticket.intent == COMPLAINT_INTENT,
        frt_s=frt, res_s=res, sla_fr=_sla_outcome(sla, "first_response"), sla_res=_sla_outcome(sla, "resolution"),
        csat_sent=survey is not None, csat_score=score, csat_low=score is not None and score <= csat_low,
        escalations=tuple(escalations),
    )


async def _facts_created(session: AsyncSession, start: datetime, end: datetime, zone: ZoneInfo, csat_low: int
                         ) -> list[TicketFacts]:
    cache = _Calendars(session)
    out: list[TicketFacts] = []
    after: int | None = None
    while True:
        ids = await repository.ticket_ids_created(session, start, end, after=after, limit=FACTS_CHUNK)
        if not ids:
            return out
        facts = await compute_facts(session, ids, zone=zone, csat_low=csat_low, cache=cache)
        out.extend(facts[i] for i in ids if i in facts)
        after = ids[-1]


# -- the report ---------------------------------------------------------------------------------------------------


def _group_key(facts: TicketFacts, group_by: GroupBy) -> str | None:
    if group_by in TIME_GROUPS:
        return period_of(facts.day, group_by).isoformat()
    value = facts.keys()[_DIMENSION_OF[group_by]]
    return value or None


async def report(session: AsyncSession, query: KpiQuery, *, time_zone: str = DEFAULT_TIME_ZONE,
                 max_days: int = DEFAULT_MAX_DAYS, csat_low: int = DEFAULT_CSAT_LOW,
                 now: datetime | None = None) -> KpiReport:
    """The KPI figures of `query`'s range (local dates of `time_zone`, inclusive), in total and per group.

    Args:
        time_zone: the report time zone: which day a ticket counts to, where weeks and months begin.
        max_days: the longest range (422 beyond, as for from > to).
        csat_low: a score at or under this is a low score (CoreSettings.csat_low_score).
        now: the clock's now (the `as_of` when figures are computed live).
    """
    check_query(query, max_days=max_days)
    zone = ZoneInfo(time_zone)
    start = local_start(query.date_from, zone)
    end = local_start(query.date_to + timedelta(days=1), zone)
    facts = await _facts_created(session, start, end, zone, csat_low)

    totals = Cell()
    groups: dict[str | None, Cell] = defaultdict(Cell)
    for f in facts:
        cell = next(c for _, dim, _, c in contributions(f) if dim == "all")
        totals.add(cell)
        groups[_group_key(f, query.group_by)].add(cell)

    total_backlog = (await repository.open_at(session, end)).get(None, 0)
    rows: list[KpiRow] = []
    if query.group_by in TIME_GROUPS:
        for first, last in periods(query):
            period_key = period_of(first, query.group_by).isoformat()
            backlog = (await repository.open_at(session, local_start(last + timedelta(days=1), zone))).get(None, 0)
            rows.append(KpiRow(key=period_key, label=period_key,
                               **figures(groups.get(period_key) or Cell(), backlog)))
    else:
        column = {GroupBy.channel: Ticket.channel, GroupBy.queue: Ticket.team_id, GroupBy.agent: Ticket.assignee_id,
                  GroupBy.intent: Ticket.intent}[query.group_by]
        open_now = {(None if k is None or k == "" else str(k)): n
                    for k, n in (await repository.open_at(session, end, column)).items()}
        internal = set(groups) | {k for k, n in open_now.items() if n}
        shown = await present_keys(session, query.group_by, internal)
        for key in sorted(internal, key=lambda k: (k is None, shown[k][1] or "")):
            public, label = shown[key]
            rows.append(KpiRow(key=public, label=label,
                               **figures(groups.get(key) or Cell(), open_now.get(key, 0))))
    return KpiReport(date_from=query.date_from, date_to=query.date_to, group_by=query.group_by,
                     time_zone=time_zone, as_of=now, totals=KpiRow(**figures(totals, total_backlog)), groups=rows)


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


def _behind(facts: TicketFacts, metric: Metric, end: datetime) -> bool:
    match metric:
        case Metric.tickets:
            return True
        case Metric.resolved | Metric.resolution:
            return facts.resolved
        case Metric.unresolved:
            return not facts.resolved
        case Metric.first_response:
            return facts.frt_s is not None
        case Metric.fcr:
            return facts.fcr
        case Metric.not_fcr:
            return facts.resolved and not facts.fcr
        case Metric.contained:
            return facts.contained
        case Metric.handoff:
            return facts.handoff
        case Metric.complaint:
            return facts.complaint
        case Metric.reopen:
            return facts.reopened
        case Metric.sla_first_response_met:
            return facts.sla_fr is True
        case Metric.sla_first_response_breached:
            return facts.sla_fr is False
        case Metric.sla_resolution_met:
            return facts.sla_res is True
        case Metric.sla_resolution_breached:
            return facts.sla_res is False
        case Metric.csat:
            return facts.csat_score is not None
        case Metric.csat_low:
            return facts.csat_low
        case Metric.backlog:
            return facts.resolved_at is None or facts.resolved_at >= end
    return False  # pragma: no cover


def _ticket_read(f: TicketFacts) -> KpiTicket:
    return KpiTicket(id=f.ticket_id, number=format_ticket_number(f.ticket_id), created_at=f.created_at,
                     channel=f.channel, queue_id=f.queue_id, agent_id=f.agent_id, intent=f.intent,
                     resolved_at=f.resolved_at, first_response_s=f.frt_s, resolution_s=f.res_s,
                     reopened=f.reopened, csat_score=f.csat_score)


async def tickets_behind(session: AsyncSession, query: KpiQuery, key: str | None, metric: Metric, *,
                         after: int | None = None, limit: int = 50, time_zone: str = DEFAULT_TIME_ZONE,
                         max_days: int = DEFAULT_MAX_DAYS, csat_low: int = DEFAULT_CSAT_LOW) -> KpiTicketPage:
    """The tickets that make `metric` of group `key` (None: the totals) of `query`, in id order, a page of
    `limit` after ticket id `after`. Backlog's tickets are those created in the range (or the group's period)
    that were open at its end; for a time group `key` is its first day (ISO), as the report gives it."""
    check_query(query, max_days=max_days)
    if not 1 <= limit <= 500:
        raise ValidationFailedError("limit must be 1..500", limit=limit)
    zone = ZoneInfo(time_zone)
    first, last = query.date_from, query.date_to
    if key is not None and query.group_by in TIME_GROUPS:
        try:
            period = date.fromisoformat(key)
        except ValueError:
            raise ValidationFailedError(f"key {key!r} is not a date (the first day of a {query.group_by} group)",
                                        key=key) from None
        if period_of(period, query.group_by) != period:
            raise ValidationFailedError(f"key {key!r} does not start a {query.group_by}", key=key)
        first = max(first, period)
        last = min(last, _next_period(period, query.group_by) - timedelta(days=1))
    if key is not None and query.group_by not in TIME_GROUPS:
        key = await internal_key(session, query.group_by, key)
    start, end = local_start(first, zone), local_start(last + timedelta(days=1), zone)
    items: list[KpiTicket] = []
    cursor = after
    cache = _Calendars(session)
    while len(items) <= limit:
        ids = await repository.ticket_ids_created(session, start, end, after=cursor, limit=FACTS_CHUNK)
        if not ids:
            break
        facts = await compute_facts(session, ids, zone=zone, csat_low=csat_low, cache=cache)
        for ticket_id in ids:
            f = facts.get(ticket_id)
            if f is None:
                continue
            if key is not None and query.group_by not in TIME_GROUPS \
                    and (f.keys()[_DIMENSION_OF[query.group_by]] or None) != key:
                continue
            if _behind(f, metric, end):
                items.append(_ticket_read(f))
        cursor = ids[-1]
    page = items[:limit]
    return KpiTicketPage(items=page, next_after=page[-1].id if len(items) > limit else None)


# -- volume counts ------------------------------------------------------------------------------------------------


def _bucket_start(moment: datetime, bucket: CountBucket, zone: ZoneInfo) -> datetime:
    if bucket == CountBucket.hour:
        return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return local_start(moment.astimezone(zone).date(), zone)


async def counts(session: AsyncSession, *, dimension: CountDimension | str, start: datetime, end: datetime,
                 bucket: CountBucket | str = CountBucket.hour, time_zone: str = DEFAULT_TIME_ZONE
                 ) -> list[CountRow]:
    """Tickets created and escalations decided per key of `dimension` per bucket in [start, end), sorted by
    (bucket_start, key); buckets without any are left out. Hour buckets start on the UTC hour, day buckets at the
    local midnight of `time_zone` (bucket_start is always an aware UTC datetime). By escalation_reason, `tickets`
    counts the tickets escalated with that reason in the bucket."""
    dimension, bucket = CountDimension(dimension), CountBucket(bucket)
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationFailedError("start and end must be timezone-aware")
    if start >= end:
        raise ValidationFailedError("start must be before end")
    zone = ZoneInfo(time_zone)
    # Tickets created up to a week before `start` may escalate within it.
    facts = await _facts_created(session, start - timedelta(days=7), end, zone, DEFAULT_CSAT_LOW)
    table: dict[tuple[datetime, str | None], list[int]] = defaultdict(lambda: [0, 0])
    for f in facts:
        key: str | None = _count_key(f, dimension)
        if dimension != CountDimension.escalation_reason and start <= f.created_at < end:
            table[(_bucket_start(f.created_at, bucket, zone), key)][0] += 1
        for at, reason in f.escalations:
            if start <= at < end:
                k = (reason or None) if dimension == CountDimension.escalation_reason else key
                cell = table[(_bucket_start(at, bucket, zone), k)]
                cell[1] += 1
                if dimension == CountDimension.escalation_reason:
                    cell[0] += 1
    if dimension == CountDimension.queue:  # shown by slug, as the report shows queues
        slugs = {str(i): slug for i, (slug, _) in (await repository.teams(session)).items()}
        table = {(b, None if k is None else slugs.get(k, f"#{k}")): v for (b, k), v in table.items()}
    return [CountRow(key=k, bucket_start=b, tickets=t, escalations=e)
            for (b, k), (t, e) in sorted(table.items(), key=lambda item: (item[0][0], item[0][1] or ""))]


def _count_key(f: TicketFacts, dimension: CountDimension) -> str | None:
    if dimension == CountDimension.intent:
        return f.intent
    if dimension == CountDimension.channel:
        return f.channel
    if dimension == CountDimension.queue:
        return None if f.queue_id is None else str(f.queue_id)
    return None
