from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.customers.models import ChannelIdentity, Customer
from core.db.base import Base, JSONType, parse_id, utcnow
from core.users.models import Team, User, str_enum


class TicketStatus(enum.StrEnum):
    new = "new"
    bot = "bot"
    open = "open"
    pending = "pending"
    resolved = "resolved"
    closed = "closed"


class Priority(enum.StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"

    @property
    def rank(self) -> int:
        return ("low", "normal", "high", "urgent").index(self.value)


class Direction(enum.StrEnum):
    inbound = "inbound"
    outbound = "outbound"


class AuthorKind(enum.StrEnum):
    customer = "customer"
    bot = "bot"
    agent = "agent"
    system = "system"


TICKET_PREFIX = "T-"


def format_ticket_number(ticket_id: int) -> str:
    return f"{TICKET_PREFIX}{ticket_id:06d}"


_TICKET_NUMBER = re.compile(r"[Tt]-([0-9]{1,10})")


def parse_ticket_number(number: str) -> int | None:
    """`T-000123` (case-insensitive, any zero padding) -> 123; None when it is not a ticket number.

    ASCII digits only: `str.isdigit()` also takes superscripts (`T-¹`), which `int()` refuses.
    """
    match = _TICKET_NUMBER.fullmatch(number.strip())
    return parse_id(match[1]) if match else None


def parse_ticket_ref(ref: str) -> int | None:
    """A ticket id (`123`) or number (`T-000123`) -> the id; None for anything else (never an exception)."""
    ref = ref.strip()
    return parse_id(ref) if ref[:1].isascii() and ref[:1].isdigit() else parse_ticket_number(ref)


WAITING_SQL = "assignee_id IS NULL AND merged_into_id IS NULL AND status = 'open'"
BOT_SQL = "status = 'bot'"
ANSWERED_SQL = "first_response_at IS NOT NULL"
UNMERGED_SQL = "merged_into_id IS NULL"
ACTIVE_SQL = "status IN ('new', 'open', 'pending') AND merged_into_id IS NULL"
RETENTION_SQL = "status = 'closed' AND anonymised_at IS NULL"


class Ticket(Base):
    """An appeal (eTOM Problem Handling). Its human number is derived from the id: T-000123."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_customer_status", "customer_id", "status"),
        Index("ix_tickets_status_team", "status", "team_id"),
        # The hand-over's expected wait reads a queue's latest first responses (core/handover/repository.py): only
        # answered tickets are in it (the bot's tickets, most of them, add no entry when they are written).
        Index("ix_tickets_team_first_response", "team_id", "first_response_at",
              postgresql_where=text(ANSWERED_SQL), sqlite_where=text(ANSWERED_SQL)),
        # The quiet tickets with the bot, which the bot resolves (core/bot_lifecycle): only those are in it.
        Index("ix_tickets_bot_quiet", "updated_at", postgresql_where=text(BOT_SQL), sqlite_where=text(BOT_SQL)),
        # The inbox sorted by SLA due time among active tickets (core/sla keeps sla_due_at).
        Index("ix_tickets_active_sla_due", "sla_due_at", "id",
              postgresql_where=text("status IN ('new', 'open', 'pending') AND merged_into_id IS NULL"),
              sqlite_where=text("status IN ('new', 'open', 'pending') AND merged_into_id IS NULL")),
        # The tickets automatic assignment looks for: open, unassigned, unmerged; a small slice of the table.
        Index("ix_tickets_waiting", "team_id", "created_at", postgresql_where=text(WAITING_SQL),
              sqlite_where=text(WAITING_SQL)),
        # The inbox's default order among active tickets (the few newest of a year; the index over every unmerged
        # ticket below would be walked through a year of done ones before reaching them).
        Index("ix_tickets_active_waiting", "last_customer_message_at", "id", postgresql_where=text(ACTIVE_SQL),
              sqlite_where=text(ACTIVE_SQL)),
        # The active tickets newest first: a search narrowed to them walks it checking each one's stored tsvector
        # (core/search/repository.py), instead of ANDing a common word's bitmap with every active ticket.
        Index("ix_tickets_active_id", "id", postgresql_where=text(ACTIVE_SQL), sqlite_where=text(ACTIVE_SQL)),
        # The retention policy's work: closed tickets not yet anonymised, by closing time (core/privacy).
        Index("ix_tickets_retention", "closed_at", postgresql_where=text(RETENTION_SQL),
              sqlite_where=text(RETENTION_SQL)),
        # The orders the inbox and the API list in (core/tickets/repository.SORT_KEYS), each with the id that breaks
        # ties: a keyset page is one index range whatever the view (a year of done tickets included).
        *(Index(f"ix_tickets_{name}_order", column, "id", postgresql_where=text(UNMERGED_SQL),
                sqlite_where=text(UNMERGED_SQL))
          for name, column in (("waiting", "last_customer_message_at"), ("updated", "updated_at"),
                               ("due", "sla_due_at"))),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[TicketStatus] = mapped_column(str_enum(TicketStatus), default=TicketStatus.new)
    priority: Mapped[Priority] = mapped_column(str_enum(Priority), default=Priority.normal)
    intent: Mapped[str | None] = mapped_column(String(100))
    intent_confidence: Mapped[float | None] = mapped_column(Float)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    thread_key: Mapped[str | None] = mapped_column(String(320))
    # The identity the customer last wrote from on this ticket: replies go there.
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("channel_identities.id", ondelete="SET NULL"))
    language: Mapped[str | None] = mapped_column(String(8))
    failed_bot_answers: Mapped[int] = mapped_column(Integer, default=0)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_customer_message_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    # When the current assignee got the ticket (an offline assignee's untouched tickets go back to the queue).
    assigned_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # Resolved by the bot's quiet-time rule (core/bot_lifecycle), not by a person: what containment counts.
    resolved_by_bot: Mapped[bool] = mapped_column(default=False)
    # Times a resolved (or closed) ticket came back: the KPI reports' reopen rate and first-contact resolution.
    reopen_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The last "still with the team" notice the bot sent a waiting customer (it sends one per few minutes at most).
    waiting_notice_at: Mapped[datetime | None]
    # The earliest running SLA due time (core/sla); None without a running SLA or while paused.
    sla_due_at: Mapped[datetime | None]
    # When the retention policy (or an erasure) removed what people wrote on it (core/privacy).
    anonymised_at: Mapped[datetime | None]

    customer: Mapped[Customer] = relationship(lazy="raise")
    identity: Mapped[ChannelIdentity | None] = relationship(lazy="raise")
    team: Mapped[Team | None] = relationship(lazy="raise")
    assignee: Mapped[User | None] = relationship(lazy="raise")
    messages: Mapped[list[Message]] = relationship(
        back_populates="ticket", lazy="raise", order_by="Message.id"
    )
    notes: Mapped[list[Note]] = relationship(lazy="raise", order_by="Note.id")

    @property
    def number(self) -> str:
        return format_ticket_number(self.id)


class Message(Base):
    """One message of a ticket's conversation. Inbound messages are unique per (channel, external id)."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("channel", "external_message_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    direction: Mapped[Direction] = mapped_column(str_enum(Direction))
    author_kind: Mapped[AuthorKind] = mapped_column(str_enum(AuthorKind))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(32))
    external_message_id: Mapped[str | None] = mapped_column(String(512))
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    intent: Mapped[str | None] = mapped_column(String(100))
    confidence: Mapped[float | None] = mapped_column(Float)
    language: Mapped[str | None] = mapped_column(String(8))
    entities: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The customer message a bot answer replies to (what a redelivery of that message returns).
    in_reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="messages", lazy="raise")
    in_reply_to: Mapped[Message | None] = relationship(remote_side=[id], lazy="raise")


class Note(Base):
    """An internal note on a ticket, never shown to the customer."""

    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
