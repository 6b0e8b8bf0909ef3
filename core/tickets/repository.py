"""All ticket queries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from core.customers.models import ChannelIdentity, Customer
from core.outbox.models import OutboxMessage
from core.tickets.models import (
    AuthorKind,
    Direction,
    Message,
    Note,
    Priority,
    Ticket,
    TicketStatus,
    parse_ticket_number,
)
from core.users.models import Team

OPEN_STATUSES = (TicketStatus.new, TicketStatus.bot, TicketStatus.open, TicketStatus.pending)


def _with_relations(stmt: Select[Ticket]) -> Select[Ticket]:
    return stmt.options(
        joinedload(Ticket.customer), joinedload(Ticket.team), joinedload(Ticket.assignee),
        joinedload(Ticket.identity),
    )


async def get(session: AsyncSession, ticket_id: int, *, lock: bool = False) -> Ticket | None:
    stmt = _with_relations(select(Ticket).where(Ticket.id == ticket_id))
    if lock:
        stmt = stmt.with_for_update(of=Ticket)
    return (await session.scalars(stmt)).first()


async def get_with_conversation(session: AsyncSession, ticket_id: int) -> Ticket | None:
    stmt = _with_relations(select(Ticket).where(Ticket.id == ticket_id)).options(
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
    stmt = _with_relations(
        select(Ticket).where(
            Ticket.customer_id == customer_id, or_(Ticket.id.in_(inbound), Ticket.id.in_(outbound))
        ).order_by(Ticket.id.desc()).limit(1)
    )
    return (await session.scalars(stmt)).first()


async def find_latest_by_thread(
    session: AsyncSession, customer_id: int, channel: str, thread_key: str
) -> Ticket | None:
    stmt = _with_relations(
        select(Ticket).where(
            Ticket.customer_id == customer_id, Ticket.channel == channel, Ticket.thread_key == thread_key,
            Ticket.merged_into_id.is_(None),
        ).order_by(Ticket.id.desc()).limit(1)
    )
    return (await session.scalars(stmt)).first()


async def latest_by_threads(session: AsyncSession, keys: Collection[tuple[int, str, str]]) -> Sequence[Ticket]:
    """For many (customer id, channel, thread key) triples, the latest unmerged ticket of each, in one query."""
    if not keys:
        return []
    latest = (
        select(func.max(Ticket.id))
        .where(tuple_(Ticket.customer_id, Ticket.channel, Ticket.thread_key).in_(list(keys)),
               Ticket.merged_into_id.is_(None))
        .group_by(Ticket.customer_id, Ticket.channel, Ticket.thread_key)
    )
    return (await session.scalars(_with_relations(select(Ticket).where(Ticket.id.in_(latest))))).unique().all()


async def last_bot_intents(session: AsyncSession, ticket_ids: Sequence[int]) -> dict[int, str | None]:
    """The intent of each ticket's latest bot message (tickets without one are absent), in one query."""
    latest = (
        select(func.max(Message.id))
        .where(Message.ticket_id.in_(ticket_ids), Message.author_kind == AuthorKind.bot)
        .group_by(Message.ticket_id)
    )
    rows = (await session.execute(select(Message.ticket_id, Message.intent).where(Message.id.in_(latest)))).all()
    return {ticket_id: intent for ticket_id, intent in rows}


async def recent_inbound_refs(session: AsyncSession, ticket_id: int, channel: str, limit: int = 20) -> list[str]:
    """The external ids of the ticket's latest customer messages on `channel`, oldest first."""
    rows = (await session.scalars(
        select(Message.external_message_id).where(
            Message.ticket_id == ticket_id, Message.direction == Direction.inbound, Message.channel == channel,
        ).order_by(Message.id.desc()).limit(limit)
    )).all()
    return [r for r in reversed(rows) if r]


async def insert_messages(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert many messages (column values) in one statement; returns their ids in order."""
    # render_nulls: rows whose None values differ (an answer with an intent, a hand-over notice without) stay one
    # executemany batch; without it the ORM groups the rows by the columns they give and sends a statement per run.
    return list(await session.scalars(
        insert(Message).returning(Message.id, sort_by_parameter_order=True).execution_options(render_nulls=True),
        rows))


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


def _filtered(flt: TicketFilter) -> Select[Ticket]:
    stmt = select(Ticket).where(Ticket.merged_into_id.is_(None))
    if flt.status:
        stmt = stmt.where(Ticket.status.in_(list(flt.status)))
    if flt.priority:
        stmt = stmt.where(Ticket.priority.in_(list(flt.priority)))
    if flt.team_slug:
        stmt = stmt.where(Ticket.team_id.in_(select(Team.id).where(Team.slug == flt.team_slug)))
    if flt.channel:
        stmt = stmt.where(Ticket.channel == flt.channel)
    if flt.assignee_id is not None:
        stmt = stmt.where(Ticket.assignee_id == flt.assignee_id)
    if flt.unassigned:
        stmt = stmt.where(Ticket.assignee_id.is_(None))
    if flt.customer_id is not None:
        stmt = stmt.where(Ticket.customer_id == flt.customer_id)
    if flt.created_after is not None:
        stmt = stmt.where(Ticket.created_at >= flt.created_after)
    if flt.query:
        q = flt.query.strip()
        number = parse_ticket_number(q)
        like = f"%{q.lower()}%"
        customer_match = select(Customer.id).where(
            or_(Customer.name.ilike(like), Customer.email.ilike(like), Customer.phone.ilike(like))
        )
        identity_match = select(ChannelIdentity.customer_id).where(ChannelIdentity.external_id.ilike(like))
        text_match = select(Message.ticket_id).where(Message.text.ilike(like))
        conds: list[ColumnElement[bool]] = [
            Ticket.customer_id.in_(customer_match), Ticket.customer_id.in_(identity_match),
            Ticket.subject.ilike(like), Ticket.id.in_(text_match),
        ]
        if number is not None:
            conds.append(Ticket.id == number)
        stmt = stmt.where(or_(*conds))
    return stmt


async def list_tickets(
    session: AsyncSession, flt: TicketFilter, *, limit: int, offset: int, sort: str = "waiting"
) -> tuple[Sequence[Ticket], int]:
    total = (await session.scalar(select(func.count()).select_from(_filtered(flt).subquery()))) or 0
    rows = (await session.scalars(page_statement(flt, limit=limit, offset=offset, sort=sort))).all()
    return rows, total


def page_statement(flt: TicketFilter, *, limit: int, offset: int, sort: str = "waiting") -> Select[Ticket]:
    """One page of the tickets `flt` selects, with their relations, in the `sort` order."""
    stmt = _filtered(flt)
    order: list[Any]
    if sort == "waiting":
        # Longest-waiting customer first; tickets without a customer message last.
        order = [Ticket.last_customer_message_at.is_(None), Ticket.last_customer_message_at.asc(), Ticket.id]
    elif sort == "due":
        # Nearest SLA due time first (ix_tickets_active_sla_due); tickets without a running SLA last.
        order = [Ticket.sla_due_at.asc().nulls_last(), Ticket.id]
    elif sort == "newest":
        order = [Ticket.id.desc()]
    else:
        order = [Ticket.updated_at.desc(), Ticket.id.desc()]
    return _with_relations(stmt.order_by(*order).limit(limit).offset(offset))


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
                      user_id: int, team_id: int | None) -> tuple[int, int, int, int, int]:
    """In one query, unmerged tickets: active (in `statuses`) and the user's, active and unassigned, active in the
    team (all active without a team), all active, and done."""
    active = Ticket.status.in_(list(statuses))

    def count_if(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    stmt = select(
        count_if(and_(active, Ticket.assignee_id == user_id)),
        count_if(and_(active, Ticket.assignee_id.is_(None))),
        count_if(and_(active, Ticket.team_id == team_id) if team_id is not None else active),
        count_if(active),
        count_if(Ticket.status.in_(list(done))),
    ).where(Ticket.merged_into_id.is_(None))
    mine, unassigned, queue, all_active, finished = (await session.execute(stmt)).one()
    return int(mine), int(unassigned), int(queue), int(all_active), int(finished)


async def channels_in_use(session: AsyncSession) -> list[str]:
    return sorted((await session.scalars(select(Ticket.channel).distinct())).all())


async def others_of_customer(session: AsyncSession, customer_id: int, ticket_id: int, limit: int
                             ) -> Sequence[Ticket]:
    """The customer's other unmerged tickets, newest first."""
    return (await session.scalars(
        select(Ticket).where(Ticket.customer_id == customer_id, Ticket.id != ticket_id,
                             Ticket.merged_into_id.is_(None))
        .order_by(Ticket.id.desc()).limit(limit)
    )).all()


async def intents_seen(session: AsyncSession) -> Sequence[str | None]:
    """Every intent some message carries."""
    return (await session.scalars(select(Message.intent).where(Message.intent.is_not(None)).distinct())).all()


async def open_per_assignee(session: AsyncSession, statuses: Collection[TicketStatus],
                            user_ids: Collection[int] | None = None) -> dict[int, int]:
    """How many unmerged tickets in `statuses` each assignee (of `user_ids`, or anyone) holds; absent: none."""
    stmt = (select(Ticket.assignee_id, func.count())
            .where(Ticket.status.in_(list(statuses)), Ticket.assignee_id.is_not(None), Ticket.merged_into_id.is_(None))
            .group_by(Ticket.assignee_id))
    if user_ids is not None:
        if not user_ids:
            return {}
        stmt = stmt.where(Ticket.assignee_id.in_(list(user_ids)))
    return {int(assignee_id): int(n) for assignee_id, n in (await session.execute(stmt)).all()
            if assignee_id is not None}
