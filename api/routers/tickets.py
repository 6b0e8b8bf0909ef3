from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime

from api.deps import Agent, DbSession, IdQuery, State
from api.openapi import CONFLICT, error
from core.csat import service as csat
from core.db.base import MAX_ID, parse_id
from core.errors import ValidationFailedError
from core.provider_templates import service as template_service
from core.provider_templates.schemas import TemplateReplyCreate
from core.search.service import SearchMatch
from core.sla import service as sla
from core.tags import service as tag_service
from core.tickets import service
from core.tickets.models import Priority, Ticket, TicketStatus
from core.tickets.repository import TicketFilter
from core.tickets.schemas import (
    AssignRequest,
    DeliveryRead,
    Holder,
    MergeRequest,
    MessageRead,
    NoteCreate,
    NoteRead,
    ReplyCreate,
    SearchMatchRead,
    TicketDetail,
    TicketHit,
    TicketPage,
    TicketRead,
    TicketUpdate,
)
from core.users import service as users

router = APIRouter(prefix="/tickets", tags=["tickets"], responses=CONFLICT)
TicketRef = Annotated[str, Path(description="A ticket id or number", examples=["T-000001", "1"])]


async def _detail(session: DbSession, ticket_id: int) -> TicketDetail:
    ticket, deliveries = await service.conversation(session, ticket_id)
    messages = []
    for m in ticket.messages:
        read = MessageRead.model_validate(m)
        if (o := deliveries.get(m.id)) is not None:
            read.delivery = DeliveryRead(outbox_id=o.id, status=o.status.value, attempts=o.attempts,
                                         last_error=o.last_error, sent_at=o.sent_at)
        messages.append(read)
    base = (await _read(session, ticket)).model_dump()
    return TicketDetail(**base, messages=messages, notes=[NoteRead.model_validate(n) for n in ticket.notes],
                        allowed_statuses=sorted(service.ALLOWED_TRANSITIONS[ticket.status]))


async def _read(session: DbSession, ticket: Ticket) -> TicketRead:
    read = TicketRead.model_validate(ticket)
    read.sla = await sla.sla_of(session, ticket.id)
    read.csat = await csat.answer_read(session, ticket.id)
    read.tags = [tag.name for tag in await tag_service.tags_of_ticket(session, ticket.id)]
    return read


def _match_read(match: SearchMatch) -> SearchMatchRead:
    snippet = match.snippet
    return SearchMatchRead(
        source=match.source, score=match.score,
        message_id=match.ref_id if match.source == "message" else None,
        note_id=match.ref_id if match.source == "note" else None,
        snippet=snippet.text if snippet else None, highlights=list(snippet.spans) if snippet else [])


@router.get("", response_model=TicketPage)
async def list_tickets(
    session: DbSession, user: Agent,
    status: Annotated[list[TicketStatus] | None, Query()] = None,
    priority: Annotated[list[Priority] | None, Query()] = None,
    queue: str | None = None,
    channel: str | None = None,
    intent: Annotated[str | None, Query(max_length=100)] = None,
    tag: Annotated[list[str] | None, Query(description=(
        "Tickets carrying every one of these tags (repeat it, or separate names with commas; at most 10). An unknown "
        "tag matches nothing."))] = None,
    assignee: Annotated[str | None, Query(max_length=10, description="'me', 'none' or a user id")] = None,
    customer_id: IdQuery = None,
    created_from: Annotated[AwareDatetime | None, Query(description="Created at or after (ISO 8601 with zone)")]
    = None,
    created_to: Annotated[AwareDatetime | None, Query(description="Created before (ISO 8601 with zone)")] = None,
    q: Annotated[str | None, Query(max_length=200, description=(
        "Search: words (every one must appear in one text, or one of them in the customer's name and the others in "
        "one text; Russian and English word forms match), \"a quoted phrase\", "
        "prefix*, an e-mail, a phone, a ticket number (T-000123), an order number. Results are ranked by "
        "relevance (`sort` is ignored) and each item says where it matched (`match`)."))] = None,
    sort: Annotated[Literal["waiting", "due", "newest", "updated"], Query(
        description="waiting: longest-waiting customer first; due: nearest SLA due time first")] = "waiting",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description=(
        "The next_cursor of the previous page (of a list, or of a search with the same q). Prefer it to offset: "
        "a list's page costs the same however deep, and neither skips nor repeats a ticket while new ones arrive "
        "(a search's results: each source is its newest 1,000 matches, see total_is_capped)."))] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_ID, description=(
        f"How many items to skip, at most {service.MAX_OFFSET:,} (422 beyond: use cursor). Kept for older clients: "
        "a deep offset reads every row it skips."))] = 0,
) -> TicketPage:
    assignee_id: int | None = None
    unassigned = False
    if assignee == "me":
        assignee_id = user.id
    elif assignee == "none":
        unassigned = True
    elif assignee is not None:
        assignee_id = parse_id(assignee)
        if assignee_id is None:
            raise ValidationFailedError("assignee must be 'me', 'none' or a user id", assignee=assignee)
    if created_from is not None and created_to is not None and created_to <= created_from:
        raise ValidationFailedError("created_to must be after created_from")
    flt = TicketFilter(status=status or (), priority=priority or (), team_slug=queue, channel=channel,
                       assignee_id=assignee_id, unassigned=unassigned, customer_id=customer_id, query=q,
                       created_after=created_from, created_before=created_to, intent=intent,
                       tags=tag_service.filter_keys(tag or []))
    found = await service.search(session, flt, limit=limit, offset=offset, sort=sort, cursor=cursor)
    slas = await sla.sla_of_many(session, [t.id for t in found.tickets])
    tags = await tag_service.tags_of(session, [t.id for t in found.tickets])
    items = []
    for t in found.tickets:
        item = TicketHit.model_validate(t).model_copy(update={
            "sla": slas.get(t.id), "tags": [tag.name for tag in tags.get(t.id, [])]})
        if (match := found.matches.get(t.id)) is not None:
            item.match = _match_read(match)
        items.append(item)
    return TicketPage(items=items, total=found.total, total_is_capped=found.total_is_capped, limit=limit,
                      offset=offset, next_cursor=found.next_cursor)


@router.get("/{ticket_ref}", response_model=TicketDetail)
async def get_ticket(ticket_ref: TicketRef, session: DbSession, _user: Agent) -> TicketDetail:
    return await _detail(session, service.ticket_id_from_ref(ticket_ref))


@router.post("/{ticket_ref}/take", response_model=TicketRead)
async def take(
    ticket_ref: TicketRef, session: DbSession, user: Agent,
    take_over: Annotated[bool, Query(description="Take the ticket from the person holding it (recorded as a "
                                                 "take-over; they are told). Without it a held ticket is a 409.")]
    = False,
    expected_assignee_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description=(
        "With take_over: who you saw holding the ticket; someone else holding it now is a 409."))] = None,
) -> TicketRead:
    ticket = await service.get(session, service.ticket_id_from_ref(ticket_ref), lock=True)
    expected = Holder.ANY if expected_assignee_id is None else expected_assignee_id
    return await _read(session, await service.take(session, ticket, user, expected_assignee_id=expected,
                                                   take_over=take_over))


@router.post("/{ticket_ref}/assign", response_model=TicketRead)
async def assign(ticket_ref: TicketRef, body: AssignRequest, session: DbSession, user: Agent) -> TicketRead:
    ticket = await service.get(session, service.ticket_id_from_ref(ticket_ref), lock=True)
    assignee = await users.get(session, body.user_id) if body.user_id is not None else None
    return await _read(session, await service.assign(session, ticket, assignee, user,
                                                     expected_assignee_id=body.expected_holder()))


@router.patch("/{ticket_ref}", response_model=TicketRead)
async def update(ticket_ref: TicketRef, body: TicketUpdate, session: DbSession, user: Agent) -> TicketRead:
    ticket = await service.get(session, service.ticket_id_from_ref(ticket_ref), lock=True)
    if body.queue is not None:
        await service.transfer(session, ticket, await service.team_by_slug(session, body.queue), user)
    if body.priority is not None:
        await service.change_priority(session, ticket, body.priority, user)
    if body.status is not None:
        await service.change_status(session, ticket, body.status, user)
    return await _read(session, ticket)


@router.post("/{ticket_ref}/reply", response_model=MessageRead, status_code=201)
async def reply(ticket_ref: TicketRef, body: ReplyCreate, session: DbSession, user: Agent, state: State) -> MessageRead:
    ticket = await service.get(session, service.ticket_id_from_ref(ticket_ref), lock=True)
    message = await service.reply(session, ticket, user, body.text, html=body.html, attachments=body.attachments,
                                  files=state.files, status=body.status)
    return MessageRead.model_validate(message)


@router.post("/{ticket_ref}/template-reply", response_model=MessageRead, status_code=201,
             responses={409: error("The ticket's channel has no templates, or the template is not approved"),
                        422: error("The parameters do not fit the template")})
async def template_reply(ticket_ref: TicketRef, body: TemplateReplyCreate, session: DbSession, user: Agent
                         ) -> MessageRead:
    """Reply with an approved WhatsApp template (the only message WhatsApp delivers 24 hours after the customer's
    last one); the channel sends it through the outbox, a refusal shows as the message's failed delivery."""
    ticket = await service.get(session, service.ticket_id_from_ref(ticket_ref), lock=True)
    message = await template_service.reply(session, ticket, user, body.name, body.language, body.params)
    return MessageRead.model_validate(message)


@router.post("/{ticket_ref}/notes", response_model=NoteRead, status_code=201)
async def add_note(ticket_ref: TicketRef, body: NoteCreate, session: DbSession, user: Agent) -> NoteRead:
    ticket = await service.get(session, service.ticket_id_from_ref(ticket_ref))
    return NoteRead.model_validate(await service.add_note(session, ticket, user, body.text))


@router.post("/{ticket_ref}/merge", response_model=TicketRead)
async def merge(ticket_ref: TicketRef, body: MergeRequest, session: DbSession, user: Agent) -> TicketRead:
    target = await service.get(session, service.ticket_id_from_ref(ticket_ref), lock=True)
    source = await service.get(session, body.source_ticket_id, lock=True)
    return await _read(session, await service.merge(session, source, target, user))
