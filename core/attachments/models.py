"""Attachments kept in the database (the `postgres` backend): one row per key, the bytes in content-addressed chunks.

The chunks belong to the content (the digest part of the key: the first 136 bits of the SHA-256), not to a key:
the same bytes under two names are stored once. A chunk row is small (the backend's chunk size, 256 KiB by
default), so neither a write nor a read ever holds a whole 15 MB file.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, utcnow


class AttachmentObject(Base):
    __tablename__ = "attachment_objects"

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    digest: Mapped[str] = mapped_column(String(34), index=True)  # <aa><32 hex> of the key: the chunks' address
    size: Mapped[int] = mapped_column(BigInteger)
    chunk_size: Mapped[int] = mapped_column(Integer)
    # Written, or stored again: the sweep of unsent uploads goes by it (as it goes by a file's mtime locally).
    modified_at: Mapped[datetime] = mapped_column(default=utcnow)


class AttachmentChunk(Base):
    __tablename__ = "attachment_chunks"

    digest: Mapped[str] = mapped_column(String(34), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)
