"""The one normalised shape every channel adapter produces."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.db.base import utcnow


class SenderInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    external_id: str = Field(min_length=1, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    verified: bool = False


class AttachmentInfo(BaseModel):
    """Metadata of an attachment; the bytes live in the attachment store under `storage_key` or at `url`."""

    model_config = ConfigDict(frozen=True)

    filename: str = Field(max_length=255)
    content_type: str = Field(default="application/octet-stream", max_length=255)
    size: int | None = Field(default=None, ge=0)
    url: str | None = Field(default=None, max_length=2048)
    storage_key: str | None = Field(default=None, max_length=512)


class InboundMessage(BaseModel):
    """One inbound message from any channel, frozen once built.

    `thread_key` continues an open ticket with the same key (Telegram chat, web-chat session, REST thread);
    `references` are external ids of earlier messages this one answers (email Message-IDs);
    `ticket_number_hint` is a ticket number the customer quoted (email subject).
    """

    model_config = ConfigDict(frozen=True)

    channel: str = Field(min_length=1, max_length=32)
    external_message_id: str = Field(min_length=1, max_length=512)
    sender: SenderInfo
    text: str = ""
    html: str | None = None
    subject: str | None = Field(default=None, max_length=300)
    attachments: tuple[AttachmentInfo, ...] = ()
    thread_key: str | None = Field(default=None, max_length=320)
    references: tuple[str, ...] = ()
    ticket_number_hint: str | None = None
    language_hint: str | None = Field(default=None, max_length=8)
    auto_reply: bool = False
    raw_ref: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    received_at: datetime = Field(default_factory=utcnow)

    @field_validator("received_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("received_at must be timezone-aware")
        return value


class IngestResult(BaseModel):
    ticket_id: int
    ticket_number: str
    message_id: int
    customer_id: int
    created: bool
    action: str
    reply_message_ids: list[int] = Field(default_factory=list)
