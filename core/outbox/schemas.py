"""What a channel adapter receives to send, and what the outbox exposes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class QuickReply(BaseModel):
    model_config = ConfigDict(frozen=True)
    title: str
    payload: str


class OutboundEnvelope(BaseModel):
    """One outbound message as its channel adapter sees it."""

    model_config = ConfigDict(frozen=True)

    outbox_id: int
    message_id: int
    ticket_id: int
    channel: str
    recipient: str
    ticket_number: str
    text: str
    html: str | None = None
    subject: str | None = None
    attachments: list[dict[str, Any]] = Field(default_factory=list)
    thread_key: str | None = None
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    quick_replies: list[QuickReply] = Field(default_factory=list)
    language: str | None = None
    author_kind: str = "agent"
    author_name: str | None = None  # the agent's display name on an agent's reply
    created_at: datetime | None = None
    # A retry after a partial delivery (PartialDelivery): the parts already sent, and the first one's id.
    delivered_parts: int = 0
    provider_message_id: str | None = None
    # A provider template sent instead of the text ({"name", "language", "params"}: WhatsApp outside its window).
    template: dict[str, Any] | None = None


class OutboxRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    message_id: int
    ticket_id: int
    channel: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    provider_message_id: str | None
    sent_at: datetime | None
    created_at: datetime
