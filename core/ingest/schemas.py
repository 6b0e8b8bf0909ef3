"""The one normalised shape every channel adapter produces."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.db.base import utcnow

MAX_NESTING = 32


def unstorable_reason(value: object) -> str | None:
    """Why a value cannot be stored as text, or None: a lone UTF-16 surrogate (JSON allows "\\ud800", UTF-8 and
    PostgreSQL do not), a NUL character (PostgreSQL text refuses it), or nesting deeper than MAX_NESTING.

    Checked before anything is written, so such input is a validation error (a 4xx, or a quarantined payload)
    on every backend, not a failed transaction that a channel would retry for ever.
    """
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "text contains a NUL character"
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError as exc:
                    return f"text contains a lone surrogate ({item[exc.start]!a} at {exc.start})"
        elif depth >= MAX_NESTING and isinstance(item, dict | list | tuple):
            return f"nested deeper than {MAX_NESTING} levels"
        elif isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, BaseModel):
            stack.extend((v, depth + 1) for v in item.__dict__.values())
    return None


class SenderInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    external_id: str = Field(min_length=1, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    verified: bool = False
    # Where a new visitor came from and their zone, kept on first contact only (web chat: the page, the browser's
    # IANA zone); the channel validates both before they get here.
    origin: str | None = Field(default=None, max_length=200)
    time_zone: str | None = Field(default=None, max_length=64)


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

    @model_validator(mode="after")
    def _storable(self) -> InboundMessage:
        reason = unstorable_reason(self.__dict__)
        if reason is not None:
            raise ValueError(f"unstorable message: {reason}")
        return self


class IngestResult(BaseModel):
    ticket_id: int
    ticket_number: str
    message_id: int
    customer_id: int
    created: bool
    action: str
    reply_message_ids: list[int] = Field(default_factory=list)
