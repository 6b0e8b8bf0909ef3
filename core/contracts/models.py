from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, JSONType, utcnow
from core.users.models import str_enum

# Byte order on PostgreSQL (as SQLite's BINARY): an area's regions are one index range, `area/` up to `area0`.
RegionType = String(200).with_variant(String(200, collation="C"), "postgresql")


class ContractStatus(enum.StrEnum):
    active = "active"
    terminating = "terminating"  # the customer asked to end it: reminders pause
    terminated = "terminated"
    expired = "expired"


class Contract(Base):
    """A customer's service contract (eTOM Retention & Loyalty), pushed by the operator's systems."""

    __tablename__ = "contracts"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    tariff: Mapped[str] = mapped_column(String(200), default="")
    services: Mapped[list[str]] = mapped_column(JSONType, default=list)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date, index=True)
    auto_renewal: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[ContractStatus] = mapped_column(str_enum(ContractStatus), default=ContractStatus.active)
    # Where the service is delivered, as a path of codes from wide to narrow ("msk/zelenograd/k-1420"); an outage
    # (core/incidents) names an area as such a prefix.
    region: Mapped[str | None] = mapped_column(RegionType, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
