from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db.base import Base, JSONType, utcnow


class Calendar(Base):
    """Business hours in one time zone.

    `weekly` maps "mon".."sun" to a list of "HH:MM-HH:MM" intervals in local time. It is one JSON column
    because it is always read and written whole with its calendar and never queried by piece; the dated
    exceptions are rows, one per date (unique), since there are hundreds over the years and SLA reads a range.
    """

    __tablename__ = "calendars"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    weekly: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    exceptions: Mapped[list[CalendarException]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="CalendarException.day")


class CalendarException(Base):
    """One date's own hours: none (a holiday, a day off moved here) or its intervals (a shortened day, a
    Saturday made a working day)."""

    __tablename__ = "calendar_exceptions"
    __table_args__ = (UniqueConstraint("calendar_id", "day"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    # A list of "HH:MM-HH:MM"; empty means closed all day.
    intervals: Mapped[list[str]] = mapped_column(JSONType)
    note: Mapped[str | None] = mapped_column(String(200))
