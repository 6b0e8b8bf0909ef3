"""A tag and the tickets it is on."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, utcnow

COLOURS = ("grey", "blue", "green", "yellow", "orange", "red", "purple")
"""The palette: named, so each is drawn with a text colour that meets WCAG AA contrast (console.css), never an
arbitrary hex a person picks and nobody can read."""


class Tag(Base):
    """A label agents put on tickets. `key` is the name folded for comparison (case, spaces): unique."""

    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    key: Mapped[str] = mapped_column(String(50), unique=True)
    colour: Mapped[str] = mapped_column(String(16), default="grey")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketTag(Base):
    """One tag on one ticket.

    The primary key (ticket_id, tag_id) answers "the tags of these tickets" (an inbox page) and "is this ticket
    tagged X" (a filter walking the inbox order); the index (tag_id, ticket_id) answers "the tickets tagged X" (a
    filter by a rare tag starts there).
    """

    __tablename__ = "ticket_tags"
    __table_args__ = (Index("ix_ticket_tags_tag_ticket", "tag_id", "ticket_id"),)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
