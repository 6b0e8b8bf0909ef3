from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, utcnow
from core.users.models import str_enum


class ConsentKind(enum.StrEnum):
    notices = "notices"  # service notices: contract reminders, order status changes
    marketing = "marketing"


class ConsentChange(Base):
    """One grant or withdrawal of a consent: when, where (console, api, channel, import) and by whom."""

    __tablename__ = "consent_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ConsentKind] = mapped_column(str_enum(ConsentKind))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(32))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Who, when it was no user: an integration key's name, "customer".
    actor_label: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Text, default="")
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderNoticeTemplate(Base):
    """What the customer is told when their order reaches `status`; an internal status tells them nothing."""

    __tablename__ = "order_notice_templates"
    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(64), unique=True)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    # None: the catalog's generic "order {order} is now {status}" in that language.
    text_en: Mapped[str | None] = mapped_column(Text)
    text_ru: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
