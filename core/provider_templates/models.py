from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base


class ProviderTemplate(Base):
    """One template of a channel's business account as the provider last listed it (a cache, replaced whole on
    each refresh). `param_count` is the number of body parameters ({{1}}..{{n}}); `supported` is False for a
    template this system cannot fill (header or button parameters, named parameters), `reason` says why."""

    __tablename__ = "provider_templates"
    __table_args__ = (UniqueConstraint("channel", "name", "language"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    param_count: Mapped[int] = mapped_column(Integer)
    supported: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(200))
    fetched_at: Mapped[datetime]
