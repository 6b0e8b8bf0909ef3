"""Where each channel reader has got to with its provider (an IMAP mailbox's last UID, a Telegram bot's update
offset): one table owned by core, so the schema (and the migrations) need no channel."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, utcnow


class ChannelCursor(Base):
    __tablename__ = "channel_cursors"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)  # the mailbox, the bot id
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
