from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.attachments.schemas import AttachmentRef
from core.db.base import DbId
from core.tickets.models import Priority, TicketStatus

Strict = ConfigDict(extra="forbid")


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


class TicketPage(BaseModel):
    items: list[TicketRead]
    total: int
    limit: int
    offset: int


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


class MergeRequest(BaseModel):
    model_config = Strict
    source_ticket_id: DbId


MessageRead.model_rebuild()
