"""Calendars as the API takes and gives them: intervals as "HH:MM-HH:MM" strings, local to the time zone."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

INTERVAL_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]-(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

IntervalText = Annotated[str, Field(pattern=INTERVAL_PATTERN, examples=["09:00-18:00"],
                                    description="Local wall-clock hours, start-end; the end may be 24:00")]
DayHours = Annotated[list[IntervalText], Field(max_length=24)]


class WeeklyHours(BaseModel):
    """Open hours per weekday; an empty list is a day off. 24/7 is "00:00-24:00" on every day."""

    model_config = ConfigDict(extra="forbid")
    mon: DayHours = []
    tue: DayHours = []
    wed: DayHours = []
    thu: DayHours = []
    fri: DayHours = []
    sat: DayHours = []
    sun: DayHours = []


class CalendarExceptionIn(BaseModel):
    """A date with its own hours: `hours` empty for a holiday or a day off, else a shortened or working day."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    day: date
    hours: DayHours = []
    note: str | None = Field(default=None, max_length=200)


class CalendarCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=120)
    time_zone: str = Field(min_length=1, max_length=64, examples=["Europe/Moscow"],
                           description="An IANA time zone name")
    weekly: WeeklyHours
    exceptions: list[CalendarExceptionIn] = Field(default=[], max_length=5000)


class CalendarUpdate(BaseModel):
    """Only the fields given change; `exceptions`, when given, replaces the whole list."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(default=None, min_length=1, max_length=120)
    time_zone: str | None = Field(default=None, min_length=1, max_length=64)
    weekly: WeeklyHours | None = None
    exceptions: list[CalendarExceptionIn] | None = Field(default=None, max_length=5000)


class CalendarExceptionRead(BaseModel):
    day: date
    hours: list[str]
    note: str | None


class CalendarSummary(BaseModel):
    id: int
    name: str
    time_zone: str
    weekly: WeeklyHours
    created_at: datetime
    updated_at: datetime


class CalendarRead(CalendarSummary):
    exceptions: list[CalendarExceptionRead]
