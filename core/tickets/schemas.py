from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.attachments.schemas import AttachmentRef
from core.csat.schemas import CsatRead
from core.db.base import DbId
from core.sla.schemas import SlaRead
from core.tickets.models import Priority, TicketStatus

Strict = ConfigDict(extra="forbid")


class Holder(enum.Enum):
    """`expected_assignee_id=Holder.ANY`: the caller did not say whom it saw holding the ticket."""

    ANY = "any"


ExpectedHolder = int | None | Literal[Holder.ANY]


class UserRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    email: str


class TeamRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    slug: str
    name: str


class CustomerRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str | None
    email: str | None
    phone: str | None


class TicketRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    number: str
    subject: str
    status: TicketStatus
    priority: Priority
    intent: str | None
    intent_confidence: float | None
    channel: str
    customer: CustomerRef
    team: TeamRef | None
    assignee: UserRef | None
    merged_into_id: int | None
    created_at: datetime
    updated_at: datetime
    last_customer_message_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    resolved_by_bot: bool = Field(default=False, description="resolved by the bot's quiet-time rule, not a person "
                                  "(what containment counts)")
    sla: SlaRead | None = Field(default=None, description="The ticket's SLA (null: no policy applies)")
    csat: CsatRead | None = Field(default=None, description="The customer's satisfaction answer (null: none yet; "
                                  "filled in on one ticket's answers, not in lists)")
    tags: list[str] = Field(default_factory=list, description="The names of the ticket's tags, by name")


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    ticket_id: int
    direction: str
    author_kind: str
    author_user_id: int | None
    channel: str
    external_message_id: str | None
    text: str
    html: str | None
    attachments: list[dict[str, Any]]
    intent: str | None
    confidence: float | None
    language: str | None
    entities: list[dict[str, Any]]
    created_at: datetime
    delivery: DeliveryRead | None = None


class DeliveryRead(BaseModel):
    outbox_id: int
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None


class NoteRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    ticket_id: int
    author_user_id: int | None
    text: str
    created_at: datetime


class TicketDetail(TicketRead):
    messages: list[MessageRead]
    notes: list[NoteRead]
    allowed_statuses: list[TicketStatus]


class SearchMatchRead(BaseModel):
    """Where a search found the ticket, and the matched text with the matching words' spans."""

    source: Literal["subject", "message", "note", "customer", "email", "phone", "identity", "order", "ticket"]
    score: float = Field(description="Relevance: higher is better; results come in this order")
    message_id: int | None = None
    note_id: int | None = None
    snippet: str | None = Field(default=None, description="Plain text (escape it before showing it as HTML)")
    highlights: list[tuple[int, int]] = Field(
        default_factory=list, description="[start, end) character offsets in `snippet` of the words that matched")


class TicketHit(TicketRead):
    match: SearchMatchRead | None = Field(default=None, description="With `q`: where the ticket matched")


class TicketPage(BaseModel):
    items: list[TicketHit]
    total: int = Field(description="How many tickets match, exact up to 10,000 for lists (1,000 for a search); "
                                   "past it this is the cap and total_is_capped is true")
    total_is_capped: bool = Field(default=False, description="More match than `total` says")
    limit: int
    offset: int
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page of a list "
                                    "(keyset: no row is skipped or repeated while tickets arrive); null on the "
                                    "last page and for searches, which page by offset")


class ReplyCreate(BaseModel):
    model_config = Strict
    text: str = Field(min_length=1, max_length=100_000)
    html: str | None = Field(default=None, max_length=500_000)
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=20)
    status: TicketStatus | None = None


class NoteCreate(BaseModel):
    model_config = Strict
    text: str = Field(min_length=1, max_length=50_000)


class TicketUpdate(BaseModel):
    model_config = Strict
    status: TicketStatus | None = None
    priority: Priority | None = None
    queue: str | None = Field(default=None, min_length=1, max_length=64)


class AssignRequest(BaseModel):
    model_config = Strict
    user_id: DbId | None
    expected_assignee_id: DbId | None = Field(
        default=None, description="Who you saw holding the ticket (null: nobody). When sent, someone else "
        "holding it now is a 409 (ticket_held) instead of a silent reassignment.")

    def expected_holder(self) -> ExpectedHolder:
        """The expected holder, or Holder.ANY when the field was not sent at all."""
        return self.expected_assignee_id if "expected_assignee_id" in self.model_fields_set else Holder.ANY


class MergeRequest(BaseModel):
    model_config = Strict
    source_ticket_id: DbId


MessageRead.model_rebuild()
