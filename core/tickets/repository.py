"""All ticket queries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    false,
    func,
    insert,
    inspect,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ColumnProperty, InstanceState, joinedload, selectinload
from sqlalchemy.orm.base import NO_VALUE

from core.db.lists import IdListQuery, padded
from core.outbox.models import OutboxMessage
from core.tags.models import TicketTag
from core.tickets.models import (
    AuthorKind,
    Direction,
    Message,
    Note,
    Priority,
    Ticket,
    TicketStatus,
)
from core.users.models import Team

OPEN_STATUSES = (TicketStatus.new, TicketStatus.bot, TicketStatus.open, TicketStatus.pending)


def with_relations(stmt: Select[Ticket]) -> Select[Ticket]:
    """Load what every ticket page and list shows with the ticket (its relationships are lazy="raise")."""
    return stmt.options(
        joinedload(Ticket.customer), joinedload(Ticket.team), joinedload(Ticket.assignee),
        joinedload(Ticket.identity),
    )


async def get(session: AsyncSession, ticket_id: int, *, lock: bool = False) -> Ticket | None:
    stmt = with_relations(select(Ticket).where(Ticket.id == ticket_id))
    if lock:
        stmt = stmt.with_for_update(of=Ticket)
    return (await session.scalars(stmt)).first()


async def get_with_conversation(session: AsyncSession, ticket_id: int) -> Ticket | None:
    stmt = with_relations(select(Ticket).where(Ticket.id == ticket_id)).options(
        selectinload(Ticket.messages), selectinload(Ticket.notes)
    )
    return (await session.scalars(stmt)).first()


async def outbox_for_ticket(session: AsyncSession, ticket_id: int) -> Sequence[OutboxMessage]:
    return (await session.scalars(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket_id))).all()


async def find_by_references(
    session: AsyncSession, customer_id: int, channel: str, references: Sequence[str]
) -> Ticket | None:
    """The newest ticket of this customer holding a message one of `references` names."""
    if not references:
        return None
    refs = list(references)[-50:]
    inbound = select(Message.ticket_id).where(Message.channel == channel, Message.external_message_id.in_(refs))
    outbound = select(OutboxMessage.ticket_id).where(
        OutboxMessage.channel == channel, OutboxMessage.provider_message_id.in_(refs)
    )
    stmt = with_relations(
        select(Ticket).where(
            Ticket.customer_id == customer_id, or_(Ticket.id.in_(inbound), Ticket.id.in_(outbound))
        ).order_by(Ticket.id.desc()).limit(1)
    )
    return (await session.scalars(stmt)).first()


async def find_latest_by_thread(
    session: AsyncSession, customer_id: int, channel: str, thread_key: str
) -> Ticket | None:
    stmt = with_relations(
        select(Ticket).where(
            Ticket.customer_id == customer_id, Ticket.channel == channel, Ticket.thread_key == thread_key,
            Ticket.merged_into_id.is_(None),
        ).order_by(Ticket.id.desc()).limit(1)
    )
    return (await session.scalars(stmt)).first()


# The ingest's per-batch lookups are built once: building a statement costs more CPU than running it
# (core/db/lists.py).
_LATEST_BY_THREADS = select(Ticket).where(Ticket.id.in_(
    select(func.max(Ticket.id))
    .where(tuple_(Ticket.customer_id, Ticket.channel, Ticket.thread_key).in_(bindparam("keys", expanding=True)),
           Ticket.merged_into_id.is_(None))
    .group_by(Ticket.customer_id, Ticket.channel, Ticket.thread_key)
)).options(joinedload(Ticket.customer), joinedload(Ticket.identity))
_LAST_BOT_INTENTS = IdListQuery.build(lambda match: select(Message.ticket_id, Message.intent).where(Message.id.in_(
    select(func.max(Message.id))
    .where(match(Message.ticket_id), Message.author_kind == AuthorKind.bot)
    .group_by(Message.ticket_id)
)))


async def latest_by_threads(session: AsyncSession, keys: Collection[tuple[int, str, str]]) -> Sequence[Ticket]:
    """For many (customer id, channel, thread key) triples, the latest unmerged ticket of each, in one query.

    The ingest's read: the tickets come with their customer and identity (what placing a message uses), not with
    their team and assignee (which it reads by id; setting them needs no load) - two joins and two ORM objects
    fewer per ticket of every batch."""
    if not keys:
        return []
    return (await session.scalars(_LATEST_BY_THREADS, {"keys": padded(keys)})).unique().all()


async def last_bot_intents(session: AsyncSession, ticket_ids: Sequence[int]) -> dict[int, str | None]:
    """The intent of each ticket's latest bot message (tickets without one are absent), in one query."""
    rows = (await session.execute(*_LAST_BOT_INTENTS.bound(session, ticket_ids))).all()
    return {ticket_id: intent for ticket_id, intent in rows}


@dataclass(frozen=True, slots=True)
class LatestMessage:
    """What an inbox row shows of a ticket's latest message."""

    author_kind: AuthorKind
    text: str
    created_at: datetime
    attachments: int


async def latest_messages(session: AsyncSession, ticket_ids: Sequence[int]) -> dict[int, LatestMessage]:
    """Each ticket's latest message (one inbox page: a bounded id list), in one query on ix_messages_ticket_id."""
    if not ticket_ids:
        return {}
    latest = select(func.max(Message.id)).where(Message.ticket_id.in_(ticket_ids)).group_by(Message.ticket_id)
    rows = await session.execute(
        select(Message.ticket_id, Message.author_kind, func.substr(Message.text, 1, 300), Message.created_at,
               Message.attachments).where(Message.id.in_(latest)))
    return {ticket_id: LatestMessage(kind, text or "", created, len(files or []))
            for ticket_id, kind, text, created, files in rows}


async def latest_customer_message_at(session: AsyncSession, ticket_ids: Sequence[int]) -> dict[int, datetime]:
    """When the customer last wrote on each ticket (one inbox page), in one query (`last_customer_message_at` is
    the start of the current wait, not the latest message)."""
    if not ticket_ids:
        return {}
    rows = await session.execute(
        select(Message.ticket_id, func.max(Message.created_at))
        .where(Message.ticket_id.in_(ticket_ids), Message.direction == Direction.inbound)
        .group_by(Message.ticket_id))
    return {ticket_id: at for ticket_id, at in rows if at is not None}


async def escalation_reasons(session: AsyncSession, ticket_ids: Sequence[int]) -> dict[int, str]:
    """Why the bot last handed each ticket to people (the decision's reason on the customer message that escalated
    it; tickets never escalated are absent), in one query."""
    if not ticket_ids:
        return {}
    latest = (
        select(func.max(Message.id))
        .where(Message.ticket_id.in_(ticket_ids), Message.direction == Direction.inbound,
               Message.extra["action"].as_string() == "escalate")
        .group_by(Message.ticket_id)
    )
    rows = await session.execute(select(Message.ticket_id, Message.extra["reason"].as_string())
                                 .where(Message.id.in_(latest)))
    return {ticket_id: reason for ticket_id, reason in rows if reason}


async def recent_inbound_refs(session: AsyncSession, ticket_id: int, channel: str, limit: int = 20) -> list[str]:
    """The external ids of the ticket's latest customer messages on `channel`, oldest first."""
    rows = (await session.scalars(
        select(Message.external_message_id).where(
            Message.ticket_id == ticket_id, Message.direction == Direction.inbound, Message.channel == channel,
        ).order_by(Message.id.desc()).limit(limit)
    )).all()
    return [r for r in reversed(rows) if r]


_TICKET_UPDATES: dict[tuple[str, ...], Update] = {}


def _ticket_update(columns: tuple[str, ...]) -> Update:
    """`UPDATE tickets SET <columns> WHERE id = ...` for executemany, built once per set of columns."""
    stmt = _TICKET_UPDATES.get(columns)
    if stmt is None:
        table = cast(Table, Ticket.__table__)
        stmt = _TICKET_UPDATES[columns] = update(table).where(table.c.id == bindparam("k_id")).values(
            {name: bindparam(f"v_{name}") for name in columns})
    return stmt


async def write_changes(session: AsyncSession, tickets: Collection[Ticket]) -> None:
    """Write the changed columns of these loaded tickets now, one executemany UPDATE per set of changed columns,
    and mark them clean, so the session's next flush leaves them alone.

    The ingest's batch changes a dozen tickets in a few columns each. The unit of work costs about ten times the
    statement in bookkeeping (a tenth of a worker's CPU under webhook load), and groups rows only while
    consecutive tickets in id order change the same columns: a batch whose tickets alternate between two sets was
    written row by row. New tickets, and tickets whose relationships now point at another object (a new identity,
    a team set as an object), are left to the flush. Tickets have no Python-side `onupdate` values (a test keeps
    it so): what changed is what the code set.
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    written: list[InstanceState[Ticket]] = []
    for ticket in {id(t): t for t in tickets}.values():  # a ticket with two messages in the batch: written once
        state: InstanceState[Ticket] = inspect(ticket)
        if not state.persistent or not state.modified:
            continue
        changed = _changed_columns(state)
        if changed is None:
            continue  # left to the flush
        if changed:
            groups.setdefault(tuple(sorted(changed)), []).append(
                {"k_id": ticket.id, **{f"v_{name}": value for name, value in changed.items()}})
        written.append(state)
    with session.no_autoflush:  # an autoflush first would write them all through the unit of work
        for columns, rows in groups.items():
            await session.execute(_ticket_update(columns), rows)
    if written:
        # What the unit of work does to the states it flushed: their history is committed (private API, pinned by
        # tests/core/tickets/test_ticket_writes.py).
        InstanceState._commit_all_states(((s, s.dict) for s in written), session.sync_session.identity_map)


def _changed_columns(state: InstanceState[Ticket]) -> dict[str, Any] | None:
    """The ticket's changed columns by name with their new values; None when a relationship now points at another
    object (the flush syncs its foreign key)."""
    changed: dict[str, Any] = {}
    for key, old in state.committed_state.items():
        prop = state.mapper.attrs[key]
        new = state.dict.get(key, NO_VALUE)
        if not isinstance(prop, ColumnProperty):
            if new is not old:
                return None
            continue
        column = prop.columns[0]
        if old is NO_VALUE or (new is not old and not column.type.compare_values(old, new)):
            changed[column.name] = new
    return changed


_MESSAGES = cast(Table, Message.__table__)
_INSERT_MESSAGES = insert(_MESSAGES).returning(_MESSAGES.c.id, sort_by_parameter_order=True)


async def insert_messages(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert many messages (every column's value, in each row) in one statement; returns their ids in order.

    A Core INSERT of the table, not the ORM's bulk insert of the entity: the rows are plain values either way (no
    unit-of-work objects), and the ORM's layer cost 8 % of a worker's CPU under webhook load for one statement
    per batch. The column types (enums, JSON, times) are the table's, as in the ORM."""
    return list(await session.scalars(_INSERT_MESSAGES, rows))


async def attachment_lists(session: AsyncSession, ticket_id: int) -> Sequence[list[dict[str, Any]] | None]:
    """The attachment lists of every message of the ticket."""
    return (await session.scalars(select(Message.attachments).where(Message.ticket_id == ticket_id))).all()


async def stream_attachment_lists_not_from_customers(session: AsyncSession
                                                     ) -> AsyncIterator[list[dict[str, Any]] | None]:
    """The attachment lists of every message not from a customer, streamed (the table can be large)."""
    result = await session.stream_scalars(
        select(Message.attachments).where(Message.author_kind != AuthorKind.customer)
        .execution_options(yield_per=1000)
    )
    async for items in result:
        yield items


async def get_message(session: AsyncSession, message_id: int) -> Message | None:
    return await session.get(Message, message_id)


async def move_conversation(session: AsyncSession, source_id: int, target_id: int) -> None:
    """Move every message and note of one ticket to another (a merge)."""
    await session.execute(update(Message).where(Message.ticket_id == source_id).values(ticket_id=target_id))
    await session.execute(update(Note).where(Note.ticket_id == source_id).values(ticket_id=target_id))


async def get_message_by_external_id(session: AsyncSession, channel: str, external_id: str) -> Message | None:
    stmt = select(Message).where(Message.channel == channel, Message.external_message_id == external_id)
    return (await session.scalars(stmt)).first()


@dataclass(frozen=True, slots=True)
class TicketFilter:
    status: Sequence[TicketStatus] = ()
    priority: Sequence[Priority] = ()
    team_slug: str | None = None
    channel: str | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    customer_id: int | None = None
    query: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    intent: str | None = None
    tags: Sequence[str] = ()  # folded tag names (core.tags.service.key_of): tickets carrying every one
    # The ids of `tags`, looked up before the list's query (core.tickets.service.search); with `tags`, required.
    tag_ids: Sequence[int] | None = None


def status_in(statuses: Collection[TicketStatus]) -> ColumnElement[bool]:
    """`Ticket.status IN (...)` with the statuses spelled into the SQL (enum constants, never input).

    With bound values neither database can match the partial indexes whose predicate names the active statuses
    (ix_tickets_active_*): SQLite proves a partial index usable only from literals, and a generic PostgreSQL plan
    knows no values. SQLite then walked the waiting order over a year of done tickets for the queue view (40-80 ms
    against 6 ms on the 100,000-ticket bench) and its assignee index for the board (815 against 1 ms)."""
    return Ticket.status.in_(bindparam(None, sorted(TicketStatus(s).value for s in statuses), expanding=True,
                                       literal_execute=True))


def visible() -> list[ColumnElement[bool]]:
    """The tickets anyone working the inbox sees: a merged ticket lives on in the one it was merged into."""
    return [Ticket.merged_into_id.is_(None)]


def conditions(flt: TicketFilter) -> list[ColumnElement[bool]]:
    """The conditions on Ticket of every filter field but the text query (core/search reads that)."""
    conds = visible()
    if flt.status:
        conds.append(status_in(flt.status))
    if flt.priority:
        conds.append(Ticket.priority.in_(list(flt.priority)))
    if flt.team_slug:
        conds.append(Ticket.team_id.in_(select(Team.id).where(Team.slug == flt.team_slug).scalar_subquery()))
    if flt.channel:
        conds.append(Ticket.channel == flt.channel)
    if flt.assignee_id is not None:
        conds.append(Ticket.assignee_id == flt.assignee_id)
    if flt.unassigned:
        conds.append(Ticket.assignee_id.is_(None))
    if flt.customer_id is not None:
        conds.append(Ticket.customer_id == flt.customer_id)
    if flt.created_after is not None:
        conds.append(Ticket.created_at >= flt.created_after)
    if flt.created_before is not None:
        conds.append(Ticket.created_at < flt.created_before)
    if flt.intent:
        conds.append(Ticket.intent == flt.intent)
    conds += _tag_conditions(flt)
    return conds


def _tag_conditions(flt: TicketFilter) -> list[ColumnElement[bool]]:
    """One semi-join per tag on ticket_tags: the planner starts from the (tag_id, ticket_id) index for a rare tag, or
    walks the list's order checking each ticket's (ticket_id, tag_id) key for a common one.

    The ids are spelled into the SQL (looked up by the service, never input): only a known tag id lets PostgreSQL
    tell a rare tag from a common one (its statistics of ticket_tags.tag_id); behind a sub-select or a generic plan
    it assumed every tag average and walked the whole done list looking for a 200-ticket tag (1.2 s at 1,000,000).
    """
    if not flt.tags:
        return []
    if flt.tag_ids is None:
        raise ValueError("TicketFilter.tags without tag_ids: look the ids up first (core.tickets.service.search)")
    if len(flt.tag_ids) < len(flt.tags):
        return [false()]  # a tag nobody has: no ticket carries it
    return [Ticket.id.in_(select(TicketTag.ticket_id).where(
        TicketTag.tag_id == bindparam(None, tag_id, literal_execute=True))) for tag_id in flt.tag_ids]


def _filtered(flt: TicketFilter) -> Select[Ticket]:
    return select(Ticket).where(*conditions(flt))


COUNT_CAP = 10_000
"""Counts stop here ("10,000+"): counting every done ticket of a year on each inbox refresh is the slow part."""

SORT_KEYS: dict[str, tuple[Any, bool]] = {
    # sort -> (the column ordered by, descending?); ties broken by the id, in the same direction.
    "waiting": (Ticket.last_customer_message_at, False),  # longest-waiting customer first; none last
    "due": (Ticket.sla_due_at, False),  # nearest SLA due time first; none last
    "newest": (None, True),
    "updated": (Ticket.updated_at, True),
}


@dataclass(frozen=True, slots=True)
class After:
    """Where the previous page stopped: its last row's sort value and id (keyset pagination)."""

    value: datetime | None
    id: int


def _order(sort: str) -> list[Any]:
    column, desc = SORT_KEYS[sort]
    if column is None:
        return [Ticket.id.desc()]
    if desc:
        # Only NOT NULL columns sort descending (updated_at): the index read backwards gives this order.
        return [column.desc(), Ticket.id.desc()]
    return [column.asc().nulls_last(), Ticket.id.asc()]


def _after(sort: str, after: After) -> ColumnElement[bool]:
    """The rows after `after` in the `sort` order (nulls last): a page starts where the previous one stopped, so
    tickets arriving meanwhile never shift a row onto two pages or between them."""
    column, desc = SORT_KEYS[sort]
    if column is None:
        return Ticket.id < after.id
    beyond = Ticket.id < after.id if desc else Ticket.id > after.id
    if after.value is None:
        return and_(column.is_(None), beyond)
    further = column < after.value if desc else column > after.value
    return or_(further, and_(column == after.value, beyond), column.is_(None))


def sort_value(ticket: Ticket, sort: str) -> datetime | None:
    column, _desc = SORT_KEYS[sort]
    return None if column is None else getattr(ticket, column.key)


async def count_capped(session: AsyncSession, conds: Sequence[ColumnElement[bool]], cap: int = COUNT_CAP) -> int:
    """How many tickets match, counted up to `cap` + 1 (more than `cap`: the count is cap + 1)."""
    inner = select(Ticket.id).where(*conds).limit(cap + 1).subquery()
    return int(await session.scalar(select(func.count()).select_from(inner)) or 0)


async def list_tickets(session: AsyncSession, flt: TicketFilter, *, limit: int, offset: int = 0,
                       sort: str = "waiting", after: After | None = None) -> tuple[Sequence[Ticket], bool]:
    """One page of the tickets `flt` selects in the `sort` order, after `after` (or `offset` rows), and whether
    more follow."""
    rows = (await session.scalars(page_statement(flt, limit=limit + 1, offset=offset, sort=sort, after=after))
            ).unique().all()
    return rows[:limit], len(rows) > limit


async def get_many(session: AsyncSession, ticket_ids: Sequence[int]) -> Sequence[Ticket]:
    """These tickets with their relations (any order)."""
    if not ticket_ids:
        return []
    return (await session.scalars(with_relations(select(Ticket).where(Ticket.id.in_(list(ticket_ids)))))
            ).unique().all()


def page_statement(flt: TicketFilter, *, limit: int, offset: int = 0, sort: str = "waiting",
                   after: After | None = None) -> Select[Ticket]:
    """One page of the tickets `flt` selects, with their relations, in the `sort` order."""
    stmt = _filtered(flt)
    if after is not None:
        stmt = stmt.where(_after(sort, after))
    return with_relations(stmt.order_by(*_order(sort)).limit(limit).offset(offset))


async def get_team_by_slug(session: AsyncSession, slug: str) -> Team | None:
    return (await session.scalars(select(Team).where(Team.slug == slug))).first()


async def change_marker(session: AsyncSession) -> tuple[int, int]:
    """The newest message and audit entry: when either moves, something a live view shows has changed.

    Two primary-key lookups, cheap enough to ask every second while live events cannot be trusted.
    """
    from core.audit.models import AuditEntry

    latest_message = await session.scalar(select(func.max(Message.id)))
    latest_audit = await session.scalar(select(func.max(AuditEntry.id)))
    return int(latest_message or 0), int(latest_audit or 0)


async def count_views(session: AsyncSession, statuses: Collection[TicketStatus], done: Collection[TicketStatus],
                      user_id: int, team_id: int | None, cap: int = COUNT_CAP) -> tuple[int, int, int, int, int]:
    """In one query, unmerged tickets, each counted up to `cap` + 1: active (in `statuses`) and the user's, active
    and unassigned, active in the team (all active without a team), all active, and done. Each is an index range
    that stops at the cap, so a year of done tickets costs as much to count as 10,000."""
    active = [Ticket.merged_into_id.is_(None), status_in(statuses)]

    def capped(*conds: ColumnElement[bool]) -> Any:
        inner = select(Ticket.id).where(*conds).limit(cap + 1).subquery()
        return select(func.count()).select_from(inner).scalar_subquery()

    stmt = select(
        capped(*active, Ticket.assignee_id == user_id),
        capped(*active, Ticket.assignee_id.is_(None)),
        capped(*active, Ticket.team_id == team_id) if team_id is not None else capped(*active),
        capped(*active),
        capped(Ticket.merged_into_id.is_(None), status_in(done)),
    )
    mine, unassigned, queue, all_active, finished = (await session.execute(stmt)).one()
    return int(mine), int(unassigned), int(queue), int(all_active), int(finished)


async def channels_in_use(session: AsyncSession) -> list[str]:
    """The channels conversations came through: a skip scan of the messages' (channel, external id) index, one
    lookup per channel (SELECT DISTINCT over a year of tickets read all of them on every inbox page)."""
    first = select(func.min(Message.channel).label("channel")).cte("seen", recursive=True)
    following = select(select(func.min(Message.channel)).where(Message.channel > first.c.channel)
                       .scalar_subquery()).where(first.c.channel.is_not(None))
    seen = first.union_all(following)
    return sorted(c for c in (await session.scalars(select(seen.c.channel))).all() if c is not None)


async def others_of_customer(session: AsyncSession, customer_id: int, ticket_id: int, limit: int
                             ) -> Sequence[Ticket]:
    """The customer's other unmerged tickets, newest first."""
    return (await session.scalars(
        select(Ticket).where(Ticket.customer_id == customer_id, Ticket.id != ticket_id,
                             Ticket.merged_into_id.is_(None))
        .order_by(Ticket.id.desc()).limit(limit)
    )).all()


RECENT_MESSAGES = 10_000


async def intents_seen(session: AsyncSession, recent: int = RECENT_MESSAGES) -> Sequence[str | None]:
    """The intents the newest `recent` messages carry (what the bot produces now): a read at the end of the primary
    key. Every message of a year was 1.6 s on each ticket page (bench/scale.py)."""
    newest = select(Message.intent).order_by(Message.id.desc()).limit(recent).subquery()
    return (await session.scalars(select(newest.c.intent).where(newest.c.intent.is_not(None)).distinct())).all()


async def open_per_assignee(session: AsyncSession, statuses: Collection[TicketStatus],
                            user_ids: Collection[int] | None = None) -> dict[int, int]:
    """How many unmerged tickets in `statuses` each assignee (of `user_ids`, or anyone) holds; absent: none."""
    in_statuses = status_in(statuses)
    stmt = (select(Ticket.assignee_id, func.count())
            .where(in_statuses, Ticket.assignee_id.is_not(None), Ticket.merged_into_id.is_(None))
            .group_by(Ticket.assignee_id))
    if user_ids is not None:
        if not user_ids:
            return {}
        stmt = stmt.where(Ticket.assignee_id.in_(list(user_ids)))
    return {int(assignee_id): int(n) for assignee_id, n in (await session.execute(stmt)).all()
            if assignee_id is not None}
