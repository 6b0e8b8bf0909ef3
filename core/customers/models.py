from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint, event, false, text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db.base import Base, utcnow

# The customers suggested as duplicates: unmerged, not erased, with the contact key set (migration 0026).
LIVE_SQL = "merged_into_id IS NULL AND erased_at IS NULL"


def email_key(email: str | None) -> str | None:
    """The form two spellings of one address share: trimmed, lower-case."""
    value = (email or "").strip().lower()
    return value[:320] or None


def phone_key(phone: str | None) -> str | None:
    """The digits of a phone number, a Russian trunk prefix 8 read as +7 (8 900 ... = +7 900 ...); None when too
    short to name one line."""
    digits = re.sub(r"\D", "", phone or "")
    if len(digits) == 11 and digits.startswith("8"):
        digits = "7" + digits[1:]
    return digits[:32] if len(digits) >= 6 else None


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        Index("ix_customers_email_key_live", "email_key", postgresql_where=text(LIVE_SQL), sqlite_where=text(LIVE_SQL)),
        Index("ix_customers_phone_key_live", "phone_key", postgresql_where=text(LIVE_SQL), sqlite_where=text(LIVE_SQL)),
    )
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
    # Normalised contacts (set on every flush from email/phone): what identity linking and the duplicate list
    # compare, through the partial indexes below.
    email_key: Mapped[str | None] = mapped_column(String(320))
    phone_key: Mapped[str | None] = mapped_column(String(32))

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
    # Where the person first came from on this channel (web chat: host and path of the page), set once.
    origin: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="identities", lazy="raise")


@event.listens_for(Customer, "before_insert")
@event.listens_for(Customer, "before_update")
def _contact_keys(_mapper: Any, _connection: Any, customer: Customer) -> None:
    customer.email_key = email_key(customer.email)
    customer.phone_key = phone_key(customer.phone)


class CustomerMerge(Base):
    """One merge of a customer into another and what it moved, so that un-merging puts exactly that back.

    `moved` holds the ids of the identities, tickets, orders and contracts that changed hands, and `filled` the
    contact fields of the target that were empty and took the source's value."""

    __tablename__ = "customer_merges"
    __table_args__ = (Index("ix_customer_merges_pair", "source_id", "target_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Why: "manual" (a person), "verified_contact" (a channel vouched for the same email or phone).
    reason: Mapped[str] = mapped_column(String(32), default="manual")
    moved: Mapped[dict[str, Any]] = mapped_column(default=dict)
    filled: Mapped[dict[str, Any]] = mapped_column(default=dict)
    merged_at: Mapped[datetime] = mapped_column(default=utcnow)
    unmerged_at: Mapped[datetime | None]
    unmerged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class DuplicateDismissal(Base):
    """Two customers a supervisor said are different people: never suggested (nor linked automatically) again."""

    __tablename__ = "customer_distinct_pairs"
    __table_args__ = (UniqueConstraint("low_id", "high_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    low_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    high_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
