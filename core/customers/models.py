from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db.base import Base, utcnow


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    language: Mapped[str | None] = mapped_column(String(8))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    erased_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Preferences (core/consent): where and when notices the customer did not ask for may reach them.
    preferred_channel: Mapped[str | None] = mapped_column(String(32))
    quiet_from: Mapped[str | None] = mapped_column(String(5))  # "22:00" local; both set or neither
    quiet_until: Mapped[str | None] = mapped_column(String(5))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    # Service notices are on until withdrawn; marketing is off until granted. Every change is in consent_log.
    consent_notices: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    consent_marketing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    identities: Mapped[list[ChannelIdentity]] = relationship(back_populates="customer", lazy="raise")


class ChannelIdentity(Base):
    """How one customer is known on one channel: (channel, external_id) is unique."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str | None] = mapped_column(String(200))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="identities", lazy="raise")
