from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base
from core.users.models import str_enum


class ThrottleScope(enum.StrEnum):
    account = "account"  # keyed by the e-mail typed in, whether or not such a user exists
    address = "address"  # keyed by the client's address


class LoginThrottle(Base):
    """Failed sign-ins of one account or address: kept in the database so every worker and instance sees them."""

    __tablename__ = "login_throttles"
    __table_args__ = (UniqueConstraint("scope", "key"), Index("ix_login_throttles_last_failure_at", "last_failure_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[ThrottleScope] = mapped_column(str_enum(ThrottleScope))
    key: Mapped[str] = mapped_column(String(320))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime]
    blocked_until: Mapped[datetime | None]  # the growing delay: no tries before this
    locked_until: Mapped[datetime | None]  # an account lock
