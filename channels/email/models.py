"""Per-mailbox IMAP checkpoint: the last UID whose ingest transaction committed, under one UIDVALIDITY."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, utcnow


class EmailCheckpoint(Base):
    __tablename__ = "email_checkpoints"

    mailbox: Mapped[str] = mapped_column(String(100), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
