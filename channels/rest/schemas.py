"""The REST channel's wire format: what an integrating system posts and what it reads back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from core.ingest.schemas import unstorable_reason


class RestSender(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_id: str = Field(min_length=1, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()-]{3,31}$")


class RestAttachment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(default="application/octet-stream", max_length=255)
    size: StrictInt | None = Field(default=None, ge=0)
    url: str = Field(min_length=1, max_length=2048, pattern=r"^https?://")


class RestMessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_message_id: str = Field(min_length=1, max_length=512)
    sender: RestSender
    text: str = Field(default="", max_length=100_000)
    attachments: list[RestAttachment] = Field(default_factory=list, max_length=20)
    thread_id: str | None = Field(default=None, max_length=320,
                                  description="Continues the open ticket of this thread; default: the sender")
    language: str | None = Field(default=None, pattern="^(ru|en)$")

    @field_validator("text")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        return value

    @model_validator(mode="after")
    def _storable(self) -> RestMessageCreate:
        # NUL in an id or a name fails PostgreSQL's text (and lone surrogates UTF-8) at insert: a 422 here instead.
        reason = unstorable_reason(self.model_dump())
        if reason is not None:
            raise ValueError(f"the message cannot be stored: {reason}")
        return self


class RestMessageAccepted(BaseModel):
    ticket_number: str
    ticket_id: int
    message_id: int
    created: bool
    action: str
    reply_message_ids: list[int]


class RestReply(BaseModel):
    cursor: int
    message_id: int
    ticket_number: str
    recipient: str
    thread_id: str | None
    author: str
    text: str
    html: str | None
    attachments: list[dict[str, Any]]
    quick_replies: list[dict[str, Any]]
    created_at: datetime
    # `csat`: a satisfaction survey, answered with POST /channels/rest/csat; else `message`.
    type: str = "message"


class RestReplyPage(BaseModel):
    items: list[RestReply]
    next_cursor: int
