"""Every query of the KPI engine: the sources of a ticket's facts, and the facts and rollups kept from them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, delete, func, insert, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core.audit.models import AuditEntry
from core.calendars.models import Calendar
from core.csat.models import CsatSurvey
from core.kpis.facts import COUNTERS
from core.kpis.models import KpiHourly, KpiRollup, KpiState, KpiTicketFacts
from core.sla.models import SlaPolicy, TicketSla
from core.tickets.models import AuthorKind, Direction, Message, Ticket
from core.users.models import Team, User

ESCALATE_ACTION = "escalate"


def _table(model: type[Any]) -> Table:
    """A model's table, for plain multi-row INSERTs (the ORM's bulk path cost 3 ms a row)."""
    return cast(Table, model.__table__)


async def tickets(session: AsyncSession, ticket_ids: Collection[int]) -> Sequence[Any]:
    """The columns a ticket's facts need (rows, not ORM objects: a rebuild reads a million)."""
    return (await session.execute(select(
        Ticket.id, Ticket.created_at, Ticket.status, Ticket.resolved_at, Ticket.reopen_count,
        Ticket.first_response_at, Ticket.channel, Ticket.team_id, Ticket.assignee_id, Ticket.intent,
        Ticket.resolved_by_bot, Ticket.merged_into_id).where(Ticket.id.in_(list(ticket_ids))))).all()


async def ticket_slas(session: AsyncSession, ticket_ids: Collection[int]) -> dict[int, Any]:
    rows = await session.execute(select(
        TicketSla.ticket_id, TicketSla.policy_id, TicketSla.first_response_due_at, TicketSla.first_response_met_at,
        TicketSla.resolution_due_at, TicketSla.resolution_met_at, TicketSla.notified,
    ).where(TicketSla.ticket_id.in_(list(ticket_ids))))
    return {row.ticket_id: row for row in rows}


async def policy_calendars(session: AsyncSession) -> dict[int, int]:
    """policy id -> its calendar id."""
    return {int(p): int(c) for p, c in (await session.execute(select(SlaPolicy.id, SlaPolicy.calendar_id))).all()}


async def calendars_with_exceptions(session: AsyncSession, calendar_ids: Collection[int]) -> Sequence[Calendar]:
    return (await session.scalars(
        select(Calendar).where(Calendar.id.in_(list(calendar_ids))).options(selectinload(Calendar.exceptions))
    )).all()


async def survey_scores(session: AsyncSession, ticket_ids: Collection[int]) -> dict[int, int | None]:
    """ticket -> its survey's score (None: sent, not answered); tickets without a survey are left out."""
    rows = await session.execute(select(CsatSurvey.ticket_id, CsatSurvey.score)
                                 .where(CsatSurvey.ticket_id.in_(list(ticket_ids))))
    return {row[0]: row[1] for row in rows}


async def teams(session: AsyncSession) -> dict[int, tuple[str, str]]:
    """team id -> (slug, name)."""
    return {row[0]: (row[1], row[2]) for row in await session.execute(select(Team.id, Team.slug, Team.name))}


async def team_id_by_slug(session: AsyncSession, slug: str) -> int | None:
    return await session.scalar(select(Team.id).where(Team.slug == slug))


async def user_names(session: AsyncSession, user_ids: Collection[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    return {row[0]: row[1] for row in await session.execute(
        select(User.id, User.name).where(User.id.in_(list(user_ids))))}


# -- the KPI engine's own tables ------------------------------------------------------------------------------------


async def message_signals(session: AsyncSession, ticket_ids: Collection[int]
                          ) -> Sequence[tuple[int, AuthorKind, int | None, datetime, dict[str, Any] | None]]:
    """(ticket, author kind, author id, moment, extra) of the agent messages and the escalation decisions of these
    tickets: everything a ticket's facts need from its messages, in one read."""
    escalated = and_(Message.direction == Direction.inbound, Message.extra["action"].as_string() == ESCALATE_ACTION)
    rows = await session.execute(
        select(Message.ticket_id, Message.author_kind, Message.author_user_id, Message.created_at, Message.extra)
        .where(Message.ticket_id.in_(list(ticket_ids)), (Message.author_kind == AuthorKind.agent) | escalated)
        .order_by(Message.id))
    return [(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]


async def tickets_after(session: AsyncSession, after: int, limit: int) -> list[int]:
    """Ticket ids after `after`, in order (the rebuild's walk)."""
    return list(await session.scalars(select(Ticket.id).where(Ticket.id > after).order_by(Ticket.id).limit(limit)))


async def count_tickets(session: AsyncSession, *, upto: int | None = None) -> int:
    query = select(func.count()).select_from(Ticket)
    if upto is not None:
        query = query.where(Ticket.id <= upto)
    return int(await session.scalar(query) or 0)


async def max_id(session: AsyncSession, column: Any) -> int:
    return int(await session.scalar(select(func.max(column))) or 0)


async def new_messages(session: AsyncSession, after: int, holes: Collection[int], limit: int
                       ) -> list[tuple[int, int]]:
    """(message id, ticket id) after `after` (at most `limit`), plus those of the ids in `holes` now visible."""
    rows = list(await session.execute(
        select(Message.id, Message.ticket_id).where(Message.id > after).order_by(Message.id).limit(limit)))
    if holes:
        rows += list(await session.execute(select(Message.id, Message.ticket_id).where(Message.id.in_(list(holes)))))
    return [(int(r[0]), int(r[1])) for r in rows]


async def new_audit(session: AsyncSession, after: int, holes: Collection[int], limit: int
                    ) -> list[tuple[int, str, str, str, dict[str, Any]]]:
    """(id, action, entity type, entity id, data) of audit entries after `after` (at most `limit`) and in `holes`."""
    columns = (AuditEntry.id, AuditEntry.action, AuditEntry.entity_type, AuditEntry.entity_id, AuditEntry.data)
    rows = list(await session.execute(select(*columns).where(AuditEntry.id > after).order_by(AuditEntry.id)
                                      .limit(limit)))
    if holes:
        rows += list(await session.execute(select(*columns).where(AuditEntry.id.in_(list(holes)))))
    return [(int(r[0]), r[1], r[2], r[3], r[4] or {}) for r in rows]


async def lock_state(session: AsyncSession, name: str, initial: dict[str, Any], now: datetime) -> KpiState:
    """The fold's state row, locked for this transaction (created with `initial` the first time): two folds
    (instances without a lease between them, or the job and a rebuild) take turns instead of folding twice."""
    insert = (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(KpiState)
    await session.execute(insert.values(name=name, data=initial, updated_at=now)
                          .on_conflict_do_nothing(index_elements=["name"]))
    # SQLite has no row locks: a write takes the database's write lock at once (as FOR UPDATE would the row).
    await session.execute(update(KpiState).where(KpiState.name == name).values(updated_at=KpiState.updated_at))
    state = await session.scalar(select(KpiState).where(KpiState.name == name).with_for_update()
                                 .execution_options(populate_existing=True))
    if state is None:  # pragma: no cover  (inserted above)
        raise RuntimeError("the KPI state row is missing")
    return state


async def read_state(session: AsyncSession, name: str) -> KpiState | None:
    return await session.get(KpiState, name)


async def facts_rows(session: AsyncSession, ticket_ids: Collection[int]) -> dict[int, KpiTicketFacts]:
    rows = await session.scalars(select(KpiTicketFacts).where(KpiTicketFacts.ticket_id.in_(list(ticket_ids))))
    return {row.ticket_id: row for row in rows}


async def delete_facts(session: AsyncSession, ticket_ids: Collection[int]) -> None:
    if ticket_ids:
        await session.execute(delete(KpiTicketFacts).where(KpiTicketFacts.ticket_id.in_(list(ticket_ids))))


async def insert_facts(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(_table(KpiTicketFacts)), rows)


_ROLLUP_PK = (KpiRollup.grain, KpiRollup.period, KpiRollup.dimension, KpiRollup.key)
_HOURLY_PK = (KpiHourly.dimension, KpiHourly.hour, KpiHourly.key)


async def rollup_rows(session: AsyncSession, keys: Collection[tuple[str, date, str, str]]) -> list[Any]:
    """The stored rows (grain, period, dimension, key, counters..., frt, res) of these keys."""
    out: list[Any] = []
    ordered = list(keys)
    columns = (*_ROLLUP_PK, *(getattr(KpiRollup, name) for name in COUNTERS), KpiRollup.frt, KpiRollup.res)
    for i in range(0, len(ordered), 500):
        out.extend(await session.execute(select(*columns).where(tuple_(*_ROLLUP_PK).in_(ordered[i:i + 500]))))
    return out


async def hourly_rows(session: AsyncSession, keys: Collection[tuple[str, datetime, str]]) -> list[Any]:
    out: list[Any] = []
    ordered = list(keys)
    for i in range(0, len(ordered), 500):
        out.extend(await session.execute(select(*_HOURLY_PK, KpiHourly.tickets, KpiHourly.escalations)
                                         .where(tuple_(*_HOURLY_PK).in_(ordered[i:i + 500]))))
    return out


async def write_rollups(session: AsyncSession, inserts: list[dict[str, Any]], updates: list[dict[str, Any]],
                        deletes: list[tuple[str, date, str, str]]) -> None:
    """Rows added, changed (by primary key) and gone: one statement each, many rows at a time."""
    for i in range(0, len(inserts), 2000):
        await session.execute(insert(_table(KpiRollup)), inserts[i:i + 2000])
    if updates:
        await session.execute(update(KpiRollup), updates)
    for i in range(0, len(deletes), 500):
        await session.execute(delete(KpiRollup).where(tuple_(*_ROLLUP_PK).in_(deletes[i:i + 500])))


async def write_hourly(session: AsyncSession, inserts: list[dict[str, Any]], updates: list[dict[str, Any]],
                       deletes: list[tuple[str, datetime, str]]) -> None:
    for i in range(0, len(inserts), 5000):
        await session.execute(insert(_table(KpiHourly)), inserts[i:i + 5000])
    if updates:
        await session.execute(update(KpiHourly), updates)
    for i in range(0, len(deletes), 500):
        await session.execute(delete(KpiHourly).where(tuple_(*_HOURLY_PK).in_(deletes[i:i + 500])))


async def stream_facts(session: AsyncSession) -> AsyncIterator[Any]:
    """Every facts row (plain rows with the columns' names) in creation-day order, streamed (a rebuild's second
    pass)."""
    result = await session.stream(
        select(*KpiTicketFacts.__table__.columns).order_by(KpiTicketFacts.day, KpiTicketFacts.ticket_id)
        .execution_options(yield_per=5000))
    async for row in result:
        yield row


async def clear_rollups(session: AsyncSession) -> None:
    """Empty the rollups and hourly volumes (rebuilt from the facts)."""
    for table in (KpiRollup, KpiHourly):
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text(f"TRUNCATE {table.__tablename__}"))
        else:
            await session.execute(delete(table))


async def clear_all(session: AsyncSession) -> None:
    """Empty the facts, rollups and hourly volumes (a rebuild starts from nothing)."""
    for table in (KpiTicketFacts, KpiRollup, KpiHourly):
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text(f"TRUNCATE {table.__tablename__}"))
        else:
            await session.execute(delete(table))


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def cover(first: date, last: date) -> ColumnElement[bool]:
    """Rollup rows that together hold [first, last] once: whole months from the monthly rows, the rest by day."""
    months: list[date] = []
    month = _month_start(first)
    if month < first:
        month = _next_month(month)
    while _next_month(month) - timedelta(days=1) <= last:
        months.append(month)
        month = _next_month(month)
    if not months:
        return and_(KpiRollup.grain == "d", KpiRollup.period >= first, KpiRollup.period <= last)
    head_end, tail_start = months[0], _next_month(months[-1])
    return or_(and_(KpiRollup.grain == "m", KpiRollup.period >= months[0], KpiRollup.period <= months[-1]),
               and_(KpiRollup.grain == "d", KpiRollup.period >= first, KpiRollup.period < head_end),
               and_(KpiRollup.grain == "d", KpiRollup.period >= tail_start, KpiRollup.period <= last))


_ROLLUP_COUNTERS = tuple(getattr(KpiRollup, name) for name in COUNTERS)


async def rollups(session: AsyncSession, dimension: str, where: ColumnElement[bool], *, histograms: bool = True,
                  key: str | None = None) -> Sequence[Any]:
    """(grain, period, key, counters..., [frt, res]) of the rows of `dimension` (and `key`) matching `where`."""
    if key is not None:
        where = and_(where, KpiRollup.key == key)
    columns: list[Any] = [KpiRollup.grain, KpiRollup.period, KpiRollup.key, *_ROLLUP_COUNTERS]
    if histograms:
        columns += [KpiRollup.frt, KpiRollup.res]
    return (await session.execute(select(*columns).where(KpiRollup.dimension == dimension, where))).all()


async def open_before(session: AsyncSession, dimension: str, before: date) -> dict[str, int]:
    """Per key: tickets created before the local date `before` and not resolved before it."""
    month = _month_start(before)
    where = or_(and_(KpiRollup.grain == "m", KpiRollup.period < month),
                and_(KpiRollup.grain == "d", KpiRollup.period >= month, KpiRollup.period < before))
    rows = await session.execute(
        select(KpiRollup.key, func.sum(KpiRollup.tickets) - func.sum(KpiRollup.resolved_out))
        .where(KpiRollup.dimension == dimension, where).group_by(KpiRollup.key))
    return {row[0]: int(row[1] or 0) for row in rows}


async def daily_balance(session: AsyncSession, first: date, last: date, dimension: str = "all", key: str = ""
                        ) -> dict[date, int]:
    """Per local day of [first, last]: tickets created minus tickets resolved that day (of one key)."""
    rows = await session.execute(
        select(KpiRollup.period, KpiRollup.tickets - KpiRollup.resolved_out)
        .where(KpiRollup.dimension == dimension, KpiRollup.key == key, KpiRollup.grain == "d",
               KpiRollup.period >= first, KpiRollup.period <= last))
    return {row[0]: int(row[1] or 0) for row in rows}


async def facts_page(session: AsyncSession, where: Sequence[ColumnElement[bool]], limit: int
                     ) -> Sequence[KpiTicketFacts]:
    """Facts rows in (creation day, id) order: the facts index's order, so a page reads only what it shows."""
    return (await session.scalars(select(KpiTicketFacts).where(*where)
                                  .order_by(KpiTicketFacts.day, KpiTicketFacts.ticket_id).limit(limit))).all()


async def facts_day(session: AsyncSession, ticket_id: int) -> date | None:
    return await session.scalar(select(KpiTicketFacts.day).where(KpiTicketFacts.ticket_id == ticket_id))


async def hourly(session: AsyncSession, dimension: str, start: datetime, end: datetime) -> Sequence[Any]:
    """(hour, key, tickets, escalations) of `dimension` in [start, end)."""
    return (await session.execute(select(KpiHourly.hour, KpiHourly.key, KpiHourly.tickets, KpiHourly.escalations)
                                  .where(KpiHourly.dimension == dimension, KpiHourly.hour >= start,
                                         KpiHourly.hour < end))).all()


def day_range(first: date, last: date) -> ColumnElement[bool]:
    """The daily rows of [first, last]."""
    return and_(KpiRollup.grain == "d", KpiRollup.period >= first, KpiRollup.period <= last)


async def hourly_tickets(session: AsyncSession, dimension: str, *, hours: Collection[datetime] | None = None,
                         start: datetime | None = None, end: datetime | None = None) -> Sequence[Any]:
    """(key, hour, tickets) of `dimension`'s hours with tickets: just `hours`, or every hour in [start, end)."""
    where: list[ColumnElement[bool]] = [KpiHourly.dimension == dimension, KpiHourly.tickets > 0]
    if hours is not None:
        where.append(KpiHourly.hour.in_(list(hours)))
    if start is not None:
        where.append(KpiHourly.hour >= start)
    if end is not None:
        where.append(KpiHourly.hour < end)
    return (await session.execute(select(KpiHourly.key, KpiHourly.hour, KpiHourly.tickets).where(*where))).all()


async def hourly_totals(session: AsyncSession, dimension: str, start: datetime, end: datetime
                        ) -> dict[str, tuple[int, int]]:
    """Per key: (tickets, escalations) summed over the hours of `dimension` in [start, end)."""
    rows = await session.execute(
        select(KpiHourly.key, func.sum(KpiHourly.tickets), func.sum(KpiHourly.escalations))
        .where(KpiHourly.dimension == dimension, KpiHourly.hour >= start, KpiHourly.hour < end)
        .group_by(KpiHourly.key))
    return {row[0]: (int(row[1] or 0), int(row[2] or 0)) for row in rows}
