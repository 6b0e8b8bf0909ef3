"""Ticket business rules (eTOM Problem Handling): status machine, take/assign/transfer, reply, note, merge."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core import paging
from core.attachments import service as attachment_service
from core.attachments.backends import AttachmentBackend
from core.attachments.schemas import AttachmentRef
from core.audit import service as audit
from core.csat import schedule as csat
from core.db.base import MAX_ID, utcnow
from core.errors import (
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from core.events import MessageAdded, MessageContent, TicketChanged, TicketTakenOver, Topic, emit
from core.nlu_admin import service as nlu_service
from core.nlu_admin.models import NluSuggestion
from core.outbox import service as outbox_service
from core.outbox.models import OutboxMessage
from core.search import service as search_service
from core.search.service import SearchMatch
from core.sla import service as sla
from core.tags import repository as tag_repository
from core.tags import service as tag_service
from core.tickets import repository
from core.tickets.errors import NotAssigneeError, TicketHeldError
from core.tickets.models import (
    AuthorKind,
    Direction,
    Message,
    Note,
    Priority,
    Ticket,
    TicketStatus,
    parse_ticket_ref,
)
from core.tickets.repository import TicketFilter
from core.tickets.schemas import ExpectedHolder, Holder
from core.users.models import Role, Team, User

ALLOWED_TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    TicketStatus.new: frozenset({TicketStatus.bot, TicketStatus.open, TicketStatus.pending,
                                 TicketStatus.resolved, TicketStatus.closed}),
    TicketStatus.bot: frozenset({TicketStatus.open, TicketStatus.pending, TicketStatus.resolved,
                                 TicketStatus.closed}),
    TicketStatus.open: frozenset({TicketStatus.pending, TicketStatus.resolved, TicketStatus.closed}),
    TicketStatus.pending: frozenset({TicketStatus.open, TicketStatus.resolved, TicketStatus.closed}),
    TicketStatus.resolved: frozenset({TicketStatus.open, TicketStatus.closed}),
    TicketStatus.closed: frozenset(),
}


ACTIVE_STATUSES = (TicketStatus.new, TicketStatus.open, TicketStatus.pending)
DONE_STATUSES = (TicketStatus.resolved, TicketStatus.closed)
INBOX_VIEWS = ("mine", "unassigned", "queue", "all", "done")


def inbox_filter(view: str, user: User, *, status: Sequence[TicketStatus] = (), **extra: Any) -> TicketFilter:
    """The TicketFilter of an inbox view, refined by the filter form's fields."""
    statuses: Sequence[TicketStatus] = status or (DONE_STATUSES if view == "done" else ACTIVE_STATUSES)
    kwargs: dict[str, Any] = {"status": tuple(statuses), **extra}
    if view == "mine":
        kwargs["assignee_id"] = user.id
    elif view == "unassigned":
        kwargs["unassigned"] = True
    elif view == "queue" and user.team is not None and not kwargs.get("team_slug"):
        kwargs["team_slug"] = user.team.slug
    return TicketFilter(**kwargs)


@dataclass(frozen=True, slots=True)
class TicketList:
    """One page of a ticket list or search.

    `total` is exact up to `repository.COUNT_CAP` (lists) or the search's candidates; `total_is_capped` says more
    match. `next_cursor` continues a list after its last row (None: the last page, or a search, which pages by
    offset over its bounded, ranked results). `matches` holds, per ticket id, where a search matched.
    """

    tickets: Sequence[Ticket]
    total: int
    total_is_capped: bool
    next_cursor: str | None = None
    matches: dict[int, SearchMatch] = field(default_factory=dict)


SORTS = ("waiting", "due", "newest", "updated")


def encode_cursor(sort: str, ticket: Ticket) -> str:
    value = repository.sort_value(ticket, sort)
    return paging.encode_cursor(sort, value.isoformat() if value is not None else None, ticket.id)


def decode_cursor(cursor: str, sort: str) -> repository.After:
    """The position a cursor names; ValidationFailedError for one that is malformed or made for another sort."""
    sort_of, value, ticket_id = paging.cursor_parts(cursor, 3)
    try:
        after = repository.After(datetime.fromisoformat(value) if value is not None else None, int(ticket_id))
    except (ValueError, TypeError):
        raise paging.not_a_cursor(cursor) from None
    if sort_of != sort:
        raise ValidationFailedError(f"this cursor continues a list sorted by {sort_of}, not {sort}", sort=sort)
    if not 0 <= after.id <= MAX_ID or (after.value is not None and after.value.tzinfo is None):
        raise paging.not_a_cursor(cursor)
    return after


SEARCH = "search"  # the "sort" a search cursor names: relevance, then newest


def encode_search_cursor(score: float, ticket_id: int) -> str:
    return paging.encode_cursor(SEARCH, score, ticket_id)  # JSON writes a float's repr, which reads back exactly


def decode_search_cursor(cursor: str) -> tuple[float, int]:
    """The (score, ticket id) a search's cursor continues after; ValidationFailedError for a list's or a bad one."""
    sort_of, score, ticket_id = paging.cursor_parts(cursor, 3)
    try:
        position = (float(score), int(ticket_id))
    except (ValueError, TypeError):
        raise paging.not_a_cursor(cursor) from None
    if sort_of != SEARCH:
        raise ValidationFailedError(f"this cursor continues a list sorted by {sort_of}, not a search (q)",
                                    sort=str(sort_of)[:20])
    if not 0 <= position[1] <= MAX_ID or not math.isfinite(position[0]):
        raise paging.not_a_cursor(cursor)
    return position


MAX_OFFSET = 10_000  # the deepest `offset` a list takes (a search's ranked results are shorter anyway)


async def search(session: AsyncSession, flt: TicketFilter, *, limit: int, offset: int = 0, sort: str = "waiting",
                 cursor: str | None = None) -> TicketList:
    """The tickets `flt` selects: with a text query, ranked by relevance (search); without one, in the `sort`
    order ("waiting", "due", "newest" or "updated"), continued by `cursor` (keyset) or `offset` (older clients)."""
    if offset > MAX_OFFSET:
        # OFFSET reads and throws away every row it skips (591 ms at 100,000 on a year of tickets): deeper pages
        # are what the cursor is for, at the same cost on every page.
        raise ValidationFailedError(
            f"offset is at most {MAX_OFFSET}: to page deeper, pass each page's next_cursor as cursor",
            offset=offset, max_offset=MAX_OFFSET)
    if flt.tags and flt.tag_ids is None:
        flt = replace(flt, tag_ids=await tag_repository.ids_of(session, flt.tags))
    if flt.query and flt.query.strip():
        after_match = decode_search_cursor(cursor) if cursor is not None else None
        found = await search_service.search(session, flt, limit=limit, offset=offset if after_match is None else 0,
                                            after=after_match)
        return TicketList(found.tickets, found.total, found.total_is_capped,
                          encode_search_cursor(*found.next_after) if found.next_after else None, found.matches)
    after = decode_cursor(cursor, sort) if cursor is not None else None
    rows, more = await repository.list_tickets(session, flt, limit=limit, offset=offset if after is None else 0,
                                               sort=sort, after=after)
    counted = await repository.count_capped(session, repository.conditions(flt))
    capped = counted > repository.COUNT_CAP
    next_cursor = encode_cursor(sort, rows[-1]) if more and rows else None
    return TicketList(rows, min(counted, repository.COUNT_CAP), capped, next_cursor)


async def conversation(session: AsyncSession, ticket_id: int) -> tuple[Ticket, dict[int, OutboxMessage]]:
    """The ticket with its messages and notes, and the delivery (outbox row) of each outbound message by id."""
    ticket = await repository.get_with_conversation(session, ticket_id)
    if ticket is None:
        raise NotFoundError(f"ticket {ticket_id} not found")
    return ticket, {o.message_id: o for o in await repository.outbox_for_ticket(session, ticket_id)}


async def inbox_previews(session: AsyncSession, ticket_ids: Sequence[int]
                         ) -> tuple[dict[int, repository.LatestMessage], dict[int, str]]:
    """For one inbox page: each ticket's latest message, and why the bot handed it to people (two queries)."""
    return (await repository.latest_messages(session, ticket_ids),
            await repository.escalation_reasons(session, ticket_ids))


async def inbox_counts(session: AsyncSession, user: User) -> dict[str, int]:
    """How many tickets each inbox view (INBOX_VIEWS) holds for this user, in one query; a view holding more than
    COUNT_CAP says COUNT_CAP + 1 (shown as "10,000+")."""
    counts = await repository.count_views(session, ACTIVE_STATUSES, DONE_STATUSES, user.id, user.team_id)
    return dict(zip(INBOX_VIEWS, counts, strict=True))


async def channels_in_use(session: AsyncSession) -> list[str]:
    """The channels tickets have come from (the inbox's filter)."""
    return await repository.channels_in_use(session)


async def message_on_ticket(session: AsyncSession, ticket_id: int, message_id: int) -> Message:
    """A message of this ticket; NotFoundError for another ticket's message too."""
    message = await repository.get_message(session, message_id)
    if message is None or message.ticket_id != ticket_id:
        raise NotFoundError(f"message {message_id} not found on this ticket")
    return message


async def suggestions_for(session: AsyncSession, message_ids: Sequence[int]) -> dict[int, NluSuggestion]:
    """The latest suggested intent per message (an agent's correction, as the admins see it)."""
    if not message_ids:
        return {}
    rows = await nlu_service.suggestions_for_messages(session, message_ids)
    return {s.message_id: s for s in rows if s.message_id is not None}


def ticket_id_from_ref(ref: str) -> int:
    """A numeric id or a ticket number (T-000123) -> the id; NotFoundError for anything else."""
    ticket_id = parse_ticket_ref(ref)
    if ticket_id is None:
        raise NotFoundError(f"ticket {ref[:40]!r} not found: use an id or a number like T-000123")
    return ticket_id


async def get(session: AsyncSession, ticket_id: int, *, lock: bool = False) -> Ticket:
    ticket = await repository.get(session, ticket_id, lock=lock)
    if ticket is None:
        raise NotFoundError(f"ticket {ticket_id} not found")
    return ticket


def transition(ticket: Ticket, new_status: TicketStatus) -> None:
    """Apply a status change if the machine allows it, stamping the lifecycle timestamps."""
    if new_status == ticket.status:
        return
    allowed = ALLOWED_TRANSITIONS[ticket.status]
    if new_status not in allowed:
        raise InvalidTransitionError(
            f"cannot move ticket {ticket.number} from {ticket.status.value} to {new_status.value}",
            current=ticket.status.value, allowed=sorted(s.value for s in allowed),
        )
    now = utcnow()
    if new_status == TicketStatus.resolved:
        ticket.resolved_at = now
    elif new_status == TicketStatus.closed:
        ticket.closed_at = now
        ticket.resolved_at = ticket.resolved_at or now
    elif ticket.status in DONE_STATUSES:
        ticket.resolved_at = None
        ticket.resolved_by_bot = False
        ticket.reopen_count = (ticket.reopen_count or 0) + 1
    ticket.status = new_status
    ticket.updated_at = now


def reopen_to_bot(ticket: Ticket) -> None:
    """A customer writes again soon after the bot resolved their ticket: it continues with the bot (the decision
    may still queue it). Not one of the status changes people make, so not in ALLOWED_TRANSITIONS."""
    if ticket.status != TicketStatus.resolved or not ticket.resolved_by_bot:
        raise InvalidTransitionError(f"only a ticket the bot resolved goes back to the bot, not {ticket.number}",
                                     current=ticket.status.value)
    ticket.status = TicketStatus.bot
    ticket.resolved_at = None
    ticket.resolved_by_bot = False
    ticket.reopen_count = (ticket.reopen_count or 0) + 1
    ticket.updated_at = utcnow()


async def change_status(session: AsyncSession, ticket: Ticket, new_status: TicketStatus, actor: User) -> Ticket:
    old = ticket.status
    transition(ticket, new_status)
    if old != new_status:
        audit.record(session, actor, "ticket.status", "ticket", ticket.id, old=old.value, new=new_status.value)
        emit(session, Topic.TICKETS, TicketChanged.of(ticket, "status"))
        await sla.track(session, ticket)
        await _survey_on_status(session, ticket, old)
    return ticket


async def _survey_on_status(session: AsyncSession, ticket: Ticket, old: TicketStatus) -> None:
    """A person resolved the ticket: arm its satisfaction survey (core/csat); reopened: drop one not sent yet."""
    if ticket.status == TicketStatus.resolved and old not in DONE_STATUSES:
        await csat.arm(session, ticket)
    elif old == TicketStatus.resolved and ticket.status not in DONE_STATUSES:
        await csat.disarm(session, ticket)


async def change_priority(session: AsyncSession, ticket: Ticket, priority: Priority, actor: User | None, *,
                          now: datetime | None = None, **data: Any) -> Ticket:
    """Set the priority; `actor` None is no person's doing (an SLA action), audited with `data`."""
    if ticket.priority != priority:
        audit.record(session, actor, "ticket.priority", "ticket", ticket.id, old=ticket.priority.value,
                     new=priority.value, **data)
        ticket.priority = priority
        ticket.updated_at = now or utcnow()
        emit(session, Topic.TICKETS, TicketChanged.of(ticket, "priority"))
        await sla.track(session, ticket, rematch=True, now=now)
    return ticket


def _ensure_workable(ticket: Ticket) -> None:
    if ticket.status == TicketStatus.closed:
        raise ConflictError(f"ticket {ticket.number} is closed", current="closed")
    if ticket.merged_into_id is not None:
        raise ConflictError(f"ticket {ticket.number} was merged into another ticket",
                            merged_into=ticket.merged_into_id)


def _check_expected(ticket: Ticket, expected_assignee_id: ExpectedHolder) -> None:
    """The page (or API client) saw `expected_assignee_id` holding the ticket; 409 if someone else holds it now."""
    holder = ticket.assignee
    if expected_assignee_id is Holder.ANY or holder is None or holder.id == expected_assignee_id:
        return
    raise TicketHeldError(ticket.number, holder.id, holder.name)


async def take(session: AsyncSession, ticket: Ticket, actor: User, *,
               expected_assignee_id: ExpectedHolder = Holder.ANY, take_over: bool = False) -> Ticket:
    """The actor takes the ticket; taking it from someone who holds it needs an explicit take-over.

    Args:
        expected_assignee_id: who the caller saw holding the ticket (None: nobody). A take-over confirmed for
            one holder never takes the ticket from another who took it since.
        take_over: the caller confirmed taking the ticket from its holder; recorded as `ticket.take_over`
            and the previous holder is told (a live event).
    Raises:
        TicketHeldError: someone else holds the ticket and the take-over was not confirmed for them.
    """
    _ensure_workable(ticket)
    holder = ticket.assignee
    if holder is None or holder.id == actor.id:
        return await _assign(session, ticket, actor, actor, action="ticket.take")
    if not take_over:
        raise TicketHeldError(ticket.number, holder.id, holder.name)
    _check_expected(ticket, expected_assignee_id)
    return await _assign(session, ticket, actor, actor, action="ticket.take_over")


async def assign(session: AsyncSession, ticket: Ticket, assignee: User | None, actor: User, *,
                 expected_assignee_id: ExpectedHolder = Holder.ANY) -> Ticket:
    """Assign to someone else (supervisors and admins) or unassign.

    `expected_assignee_id` is who the caller saw holding the ticket: 409 if someone else holds it now.
    """
    _ensure_workable(ticket)
    _check_expected(ticket, expected_assignee_id)
    if actor.role == Role.agent:
        if assignee is None or assignee.id != actor.id:
            raise PermissionDeniedError("agents can only take tickets for themselves")
        return await take(session, ticket, actor)
    if assignee is not None and not assignee.is_active:
        raise ConflictError(f"user {assignee.id} is not active")
    return await _assign(session, ticket, assignee, actor, action="ticket.assign")


async def system_assign(session: AsyncSession, ticket: Ticket, assignee: User | None, *, action: str,
                        kind: str = "assigned", now: datetime | None = None, tell_holder: bool = False,
                        **data: Any) -> Ticket:
    """No person's doing (automatic assignment, an offline agent's ticket going back to its queue, an SLA action):
    give the ticket to `assignee`, or back to its queue with None, at `now` (default: the wall clock). Audited as
    `action` with `data` and no actor. `tell_holder`: the holder it is taken from is told (TicketTakenOver), as
    when a person reassigns it (not for an offline agent's ticket going back)."""
    _ensure_workable(ticket)
    return await _assign(session, ticket, assignee, None, action=action, kind=kind, now=now,
                         tell_holder=tell_holder, **data)


async def _assign(session: AsyncSession, ticket: Ticket, assignee: User | None, actor: User | None, *, action: str,
                  kind: str = "assigned", now: datetime | None = None, tell_holder: bool = True,
                  **data: Any) -> Ticket:
    old = ticket.assignee_id
    old_status = ticket.status
    ticket.assignee_id = assignee.id if assignee else None
    ticket.assignee = assignee
    if assignee is not None and ticket.status in (TicketStatus.new, TicketStatus.bot, TicketStatus.pending):
        transition(ticket, TicketStatus.open)
    ticket.updated_at = now or utcnow()
    if ticket.assignee_id != old:
        ticket.assigned_at = ticket.updated_at if assignee is not None else None
    audit.record(session, actor, action, "ticket", ticket.id, old=old, new=ticket.assignee_id, **data)
    emit(session, Topic.TICKETS, TicketChanged.of(ticket, kind))
    if ticket.status != old_status:  # only going to humans (or back from pending) moves the SLA clock
        await sla.track(session, ticket, now=now)
    if tell_holder and old is not None and old != ticket.assignee_id and (actor is None or old != actor.id):
        # Someone else moved the ticket away from its holder: their open pages tell them.
        emit(session, Topic.TICKETS, TicketTakenOver(ticket.id, ticket.number, old, ticket.assignee_id,
                                                     assignee.name if assignee else None))
    return ticket


async def transfer(session: AsyncSession, ticket: Ticket, team: Team, actor: User | None, *,
                   now: datetime | None = None, **data: Any) -> Ticket:
    """Move the ticket to another queue; it waits there unassigned. `actor` None is no person's doing (an SLA
    action), audited with `data`."""
    _ensure_workable(ticket)
    old = ticket.team_id
    ticket.team_id = team.id
    ticket.team = team
    ticket.assignee_id = None
    ticket.assignee = None
    ticket.assigned_at = None
    if ticket.status in (TicketStatus.new, TicketStatus.bot):
        transition(ticket, TicketStatus.open)
    ticket.updated_at = now or utcnow()
    audit.record(session, actor, "ticket.transfer", "ticket", ticket.id, old=old, new=team.id, **data)
    emit(session, Topic.TICKETS, TicketChanged.of(ticket, "transferred"))
    await sla.track(session, ticket, rematch=True, now=now)
    return ticket


async def team_by_slug(session: AsyncSession, slug: str) -> Team:
    team = await repository.get_team_by_slug(session, slug)
    if team is None:
        raise NotFoundError(f"queue {slug!r} not found")
    return team


async def add_outbound(
    session: AsyncSession, ticket: Ticket, *, text: str, author_kind: AuthorKind, author: User | None = None,
    html: str | None = None, attachments: list[dict[str, Any]] | None = None,
    quick_replies: list[dict[str, str]] | None = None, language: str | None = None,
    intent: str | None = None, reply_refs: list[str] | None = None, in_reply_to: Message | None = None,
    template: dict[str, Any] | None = None,
) -> Message:
    """Write an outbound message and queue it in the outbox, to the identity the customer last wrote from.

    `template`: the channel sends this structured message instead of the text (WhatsApp: an approved template
    with its parameters; the text is what the customer reads, kept for the conversation).

    Nothing is flushed here: the message and its outbox row are inserted with the rest of the unit of work.
    `reply_refs` are the external ids of the customer messages this answers (looked up when not given).
    """
    if ticket.identity is None:
        raise ConflictError(f"ticket {ticket.number} has no channel identity to answer")
    message = Message(
        ticket_id=ticket.id, direction=Direction.outbound, author_kind=author_kind,
        author_user_id=author.id if author else None, channel=ticket.channel, text=text, html=html,
        attachments=attachments or [], entities=[], extra={}, language=language, intent=intent,
        created_at=utcnow(),
    )
    if in_reply_to is not None and in_reply_to.id is not None:
        # By id: no message-to-message dependency in the flush, so a batch's replies insert in one statement.
        message.in_reply_to_id = in_reply_to.id
    else:
        message.in_reply_to = in_reply_to
    session.add(message)
    if reply_refs is None:
        reply_refs = await repository.recent_inbound_refs(session, ticket.id, ticket.channel)
    payload = outbox_payload(ticket, reply_refs, language, quick_replies)
    if author is not None and author_kind == AuthorKind.agent:
        # Kept with the delivery: every channel shows it, and so does the web-chat history later, as it was.
        payload["author_name"] = author.shown_name
    if template is not None:
        payload["template"] = template
    outbox_service.enqueue(session, ticket, message, ticket.identity.external_id, payload)
    # Built after the commit (the message has its id then), from what the ticket holds now.
    event = MessageAdded.of(ticket, 0, author_kind.value,
                            MessageContent(message.text, message.created_at, message.attachments,
                                           payload["quick_replies"], payload.get("author_name")))
    emit(session, Topic.MESSAGES, lambda: replace(event, message_id=message.id))
    return message


def outbox_payload(ticket: Ticket, reply_refs: Sequence[str], language: str | None,
                   quick_replies: list[dict[str, str]] | None) -> dict[str, Any]:
    """What a channel needs besides the message to send it in the customer's thread."""
    return {
        "subject": ticket.subject, "thread_key": ticket.thread_key,
        "in_reply_to": reply_refs[-1] if reply_refs else None, "references": list(reply_refs[-20:]),
        "language": language, "quick_replies": quick_replies or [],
    }


@dataclass(frozen=True, slots=True)
class BotReply:
    """One bot answer for `add_bot_replies`: to the customer message `in_reply_to_id` of `ticket`."""

    ticket: Ticket
    text: str
    language: str
    intent: str | None
    quick_replies: list[dict[str, str]]
    in_reply_to_id: int
    reply_refs: list[str]


async def add_bot_replies(session: AsyncSession, replies: Sequence[BotReply]) -> list[int]:
    """Write many bot answers and queue them in the outbox: two INSERT statements whatever their number.

    The ingest's bulk path: the same rows `add_outbound` writes, without a unit-of-work object per row.
    The tickets must be flushed (they have ids) and have a channel identity. Returns the message ids, in order.
    """
    if not replies:
        return []
    now = utcnow()
    for r in replies:
        if r.ticket.identity is None:
            raise ConflictError(f"ticket {r.ticket.number} has no channel identity to answer")
    ids = await repository.insert_messages(session, [
        {"ticket_id": r.ticket.id, "direction": Direction.outbound, "author_kind": AuthorKind.bot,
         "author_user_id": None, "channel": r.ticket.channel, "external_message_id": None, "text": r.text,
         "html": None, "attachments": [], "intent": r.intent, "confidence": None, "language": r.language,
         "entities": [], "extra": {}, "in_reply_to_id": r.in_reply_to_id, "created_at": now}
        for r in replies])
    await outbox_service.enqueue_many(session, [
        (r.ticket, message_id, r.ticket.identity.external_id if r.ticket.identity else "",
         outbox_payload(r.ticket, r.reply_refs, r.language, r.quick_replies))
        for r, message_id in zip(replies, ids, strict=True)
    ])
    for r, message_id in zip(replies, ids, strict=True):
        emit(session, Topic.MESSAGES, MessageAdded.of(r.ticket, message_id, AuthorKind.bot.value,
                                                      MessageContent(r.text, now, [], r.quick_replies)))
    return ids


UPLOADS_PREFIX = attachment_service.UPLOADS + "/"


async def _ticket_attachment_keys(session: AsyncSession, ticket_id: int) -> set[str]:
    rows = await repository.attachment_lists(session, ticket_id)
    return {str(a["storage_key"]) for items in rows for a in (items or []) if a.get("storage_key")}


async def reply(
    session: AsyncSession, ticket: Ticket, actor: User, text: str, *, html: str | None = None,
    attachments: Sequence[AttachmentRef] = (), files: AttachmentBackend | None = None,
    status: TicketStatus | None = None, template: dict[str, Any] | None = None,
) -> Message:
    """An agent's answer to the customer, through the customer's own channel.

    Whoever replies, replies: a caller that asks its user first when someone else holds the ticket (the console)
    calls `ensure_holder` itself, before it stores the reply's uploads.

    Args:
        attachments: files already in the attachment store; each key is checked (404 if it is not there).
        files: the attachment store; required when there are attachments.
        template: a provider template the channel sends instead of the text (see `add_outbound`).
    """
    _ensure_workable(ticket)
    if not text.strip():
        raise ConflictError("reply text is empty")
    stored: list[dict[str, Any]] = []
    if attachments:
        if files is None:
            raise ValueError("the attachment store is required to attach files")
        stored = await attachment_service.resolve_for_reply(files, attachments)
        own = await _ticket_attachment_keys(session, ticket.id)
        for ref in attachments:
            # Agents attach what they uploaded or what this conversation already holds, never another
            # customer's files.
            if not ref.storage_key.startswith(UPLOADS_PREFIX) and ref.storage_key not in own:
                raise PermissionDeniedError(f"attachment {ref.storage_key!r} belongs to another conversation")
    if ticket.assignee_id is None and actor.role == Role.agent:
        await _assign(session, ticket, actor, actor, action="ticket.take")
    message = await add_outbound(session, ticket, text=text, html=html, attachments=stored or None,
                                 author_kind=AuthorKind.agent, author=actor, language=ticket.language,
                                 template=template)
    await session.flush()
    now = utcnow()
    ticket.first_response_at = ticket.first_response_at or now
    ticket.updated_at = now
    old = ticket.status
    if status is not None:
        transition(ticket, status)
    elif ticket.status in (TicketStatus.new, TicketStatus.bot, TicketStatus.resolved):
        transition(ticket, TicketStatus.open)
    audit.record(session, actor, "ticket.reply", "ticket", ticket.id, message_id=message.id)
    emit(session, Topic.TICKETS, TicketChanged.of(ticket, "replied"))
    await sla.track(session, ticket, replied=True)
    await _survey_on_status(session, ticket, old)
    return message


def ensure_holder(ticket: Ticket, actor: User) -> None:
    """NotAssigneeError when someone other than the actor holds the ticket (an unassigned one is anyone's)."""
    holder = ticket.assignee
    if holder is not None and holder.id != actor.id:
        raise NotAssigneeError(ticket.number, holder.id, holder.name)


async def add_note(session: AsyncSession, ticket: Ticket, actor: User, text: str) -> Note:
    if not text.strip():
        raise ConflictError("note text is empty")
    note = Note(ticket_id=ticket.id, author_user_id=actor.id, text=text, created_at=utcnow())
    session.add(note)
    await session.flush()
    audit.record(session, actor, "ticket.note", "ticket", ticket.id, note_id=note.id)
    emit(session, Topic.TICKETS, TicketChanged.of(ticket, "note"))
    return note


async def merge(session: AsyncSession, source: Ticket, target: Ticket, actor: User) -> Ticket:
    """Move every message and note of `source` into `target` (same customer) and close `source`."""
    if source.id == target.id:
        raise ConflictError("cannot merge a ticket into itself")
    if source.customer_id != target.customer_id:
        raise ConflictError("only tickets of the same customer can be merged",
                            source_customer=source.customer_id, target_customer=target.customer_id)
    for t in (source, target):
        _ensure_workable(t)
    await repository.move_conversation(session, source.id, target.id)
    await tag_service.carry_over_merge(session, source, target)
    source.merged_into_id = target.id
    transition(source, TicketStatus.closed)
    if source.created_at < target.created_at:
        target.created_at = source.created_at
    target.updated_at = utcnow()
    audit.record(session, actor, "ticket.merge", "ticket", target.id, source_id=source.id)
    emit(session, Topic.TICKETS, TicketChanged.of(source, "merged"))
    await sla.forget(session, source)
    emit(session, Topic.TICKETS, TicketChanged.of(target, "merged"))
    return target
