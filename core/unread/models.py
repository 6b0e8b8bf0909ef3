from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base


class TicketSeen(Base):
    """When a console user last saw a ticket's conversation; one row per (user, ticket), written on each view.

    The primary key (user_id, ticket_id) serves the inbox's one lookup per page: this user, these tickets.
    """

    __tablename__ = "ticket_seen"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True,
                                           index=True)
    seen_at: Mapped[datetime]
