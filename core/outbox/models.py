from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db.base import Base, utcnow
from core.tickets.models import Message, Ticket
from core.users.models import str_enum


class OutboxStatus(enum.StrEnum):
    queued = "queued"
    sending = "sending"
    sent = "sent"
    failed = "failed"


class OutboxMessage(Base):
    """An outbound message waiting for (or done with) delivery through its channel adapter."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(320))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[OutboxStatus] = mapped_column(str_enum(OutboxStatus), default=OutboxStatus.queued)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(512), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]

    message: Mapped[Message] = relationship(lazy="raise")
    ticket: Mapped[Ticket] = relationship(lazy="raise")


class OutboxPart(Base):
    """One part of an outbound message sent in several (long text, files), by the provider's id of that part,
    with the delivery state the provider reported for it (WhatsApp statuses). The outbox row's
    `payload["delivery"]` is the least advanced of its parts."""

    __tablename__ = "outbox_parts"
    __table_args__ = (UniqueConstraint("channel", "provider_message_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    part: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(32))
    provider_message_id: Mapped[str] = mapped_column(String(512))
    state: Mapped[str | None] = mapped_column(String(16))
    at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
