"""Calendars: validation, CRUD for admins, the shipped defaults, and the computable form SLA counts in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.calendars import repository
from core.calendars.business_time import BusinessCalendar, Interval, format_clock, overlaps, parse_clock
from core.calendars.models import Calendar, CalendarException
from core.calendars.schemas import (
    WEEKDAYS,
    CalendarCreate,
    CalendarExceptionIn,
    CalendarExceptionRead,
    CalendarRead,
    CalendarSummary,
    CalendarUpdate,
    WeeklyHours,
)
from core.db.base import utcnow
from core.errors import ConflictError, NotFoundError, ValidationFailedError
from core.sla import usage as sla_usage
from core.users.models import User

DATA_DIR = Path(__file__).parent / "data"
RUSSIA_OFFICE = "Russia, office hours (Moscow)"
ALWAYS_OPEN = "24/7"


# -- validation -------------------------------------------------------------------------------------------------


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_names() -> list[str]:
    """The IANA zone names a calendar can take, sorted (what a form offers)."""
    return sorted(_zone_names())


def validate_time_zone(name: str) -> ZoneInfo:
    """An IANA zone name -> its ZoneInfo; anything else (a path, an abbreviation, a typo) is a 422."""
    if name not in _zone_names():
        raise ValidationFailedError(f"unknown time zone {name!r}: give an IANA name such as 'Europe/Moscow'",
                                    field="time_zone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - listed zones load
        raise ValidationFailedError(f"unknown time zone {name!r}", field="time_zone") from exc


def parse_day_hours(texts: Sequence[str], where: str) -> tuple[Interval, ...]:
    """["09:00-13:00", "14:00-18:00"] -> sorted minute intervals; an end not after its start or two intervals
    that overlap are a 422 naming the day."""
    intervals: list[Interval] = []
    for text in texts:
        start_text, _, end_text = text.partition("-")
        start, end = parse_clock(start_text), parse_clock(end_text)
        if end <= start:
            raise ValidationFailedError(f"{where}: interval {text} ends before it starts", field=where,
                                        interval=text)
        intervals.append((start, end))
    clashing = overlaps(intervals)
    if clashing:
        first, second = clashing[0]
        pair = [f"{format_clock(a)}-{format_clock(b)}" for a, b in (first, second)]
        raise ValidationFailedError(f"{where}: intervals {pair[0]} and {pair[1]} overlap", field=where,
                                    intervals=pair)
    return tuple(sorted(intervals))


def _validate_weekly(weekly: WeeklyHours) -> None:
    days = {name: parse_day_hours(getattr(weekly, name), f"weekly.{name}") for name in WEEKDAYS}
    if not any(days.values()):
        raise ValidationFailedError("weekly hours are empty: the calendar would never open", field="weekly")


def _validate_exceptions(exceptions: Sequence[CalendarExceptionIn]) -> None:
    seen: set[date] = set()
    for item in exceptions:
        if item.day in seen:
            raise ValidationFailedError(f"exceptions: {item.day.isoformat()} is listed twice", field="exceptions",
                                        day=item.day.isoformat())
        seen.add(item.day)
        parse_day_hours(item.hours, f"exceptions.{item.day.isoformat()}")


# -- reading ----------------------------------------------------------------------------------------------------


def business_calendar(calendar: Calendar) -> BusinessCalendar:
    """The computable form of a calendar loaded with its exceptions."""
    weekly = tuple(parse_day_hours(calendar.weekly.get(name, []), name) for name in WEEKDAYS)
    exceptions = {e.day: parse_day_hours(e.intervals, e.day.isoformat()) for e in calendar.exceptions}
    return BusinessCalendar(zone=ZoneInfo(calendar.time_zone), weekly=weekly, exceptions=exceptions)


def _weekly_read(calendar: Calendar) -> WeeklyHours:
    return WeeklyHours.model_validate({name: calendar.weekly.get(name, []) for name in WEEKDAYS})


def summary(calendar: Calendar) -> CalendarSummary:
    return CalendarSummary(id=calendar.id, name=calendar.name, time_zone=calendar.time_zone,
                           weekly=_weekly_read(calendar), created_at=calendar.created_at,
                           updated_at=calendar.updated_at)


def read(calendar: Calendar) -> CalendarRead:
    """A calendar loaded with its exceptions, as the API gives it."""
    return CalendarRead(**summary(calendar).model_dump(),
                        exceptions=[CalendarExceptionRead(day=e.day, hours=list(e.intervals), note=e.note)
                                    for e in calendar.exceptions])


async def get(session: AsyncSession, calendar_id: int) -> Calendar:
    calendar = await repository.get(session, calendar_id)
    if calendar is None:
        raise NotFoundError(f"calendar {calendar_id} not found")
    return calendar


async def get_by_name(session: AsyncSession, name: str) -> Calendar:
    calendar = await repository.get_by_name(session, name)
    if calendar is None:
        raise NotFoundError(f"calendar {name!r} not found")
    return calendar


async def list_all(session: AsyncSession) -> Sequence[Calendar]:
    return await repository.list_all(session)


# -- changing ---------------------------------------------------------------------------------------------------


async def _check_name(session: AsyncSession, name: str, calendar_id: int | None) -> None:
    other = await repository.id_by_name(session, name)
    if other is not None and other != calendar_id:
        raise ConflictError(f"a calendar named {name!r} already exists", calendar_id=other)


def _weekly_json(weekly: WeeklyHours) -> dict[str, Any]:
    return {name: [_normal(text) for text in getattr(weekly, name)] for name in WEEKDAYS}


def _normal(text: str) -> str:
    return "-".join(format_clock(parse_clock(part)) for part in text.split("-"))


def _exception_rows(exceptions: Sequence[CalendarExceptionIn]) -> list[CalendarException]:
    return [CalendarException(day=item.day, intervals=sorted(_normal(text) for text in item.hours),
                              note=item.note or None)
            for item in sorted(exceptions, key=lambda e: e.day)]


async def create(session: AsyncSession, body: CalendarCreate, actor: User | None) -> Calendar:
    validate_time_zone(body.time_zone)
    _validate_weekly(body.weekly)
    _validate_exceptions(body.exceptions)
    await _check_name(session, body.name, None)
    now = utcnow()
    calendar = Calendar(name=body.name, time_zone=body.time_zone, weekly=_weekly_json(body.weekly),
                        exceptions=_exception_rows(body.exceptions), created_at=now, updated_at=now)
    session.add(calendar)
    await session.flush()
    audit.record(session, actor, "calendar.create", "calendar", calendar.id, name=calendar.name)
    return calendar


async def update(session: AsyncSession, calendar_id: int, body: CalendarUpdate, actor: User) -> Calendar:
    calendar = await get(session, calendar_id)
    changed: list[str] = []
    if body.name is not None and body.name != calendar.name:
        await _check_name(session, body.name, calendar.id)
        calendar.name = body.name
        changed.append("name")
    if body.time_zone is not None and body.time_zone != calendar.time_zone:
        validate_time_zone(body.time_zone)
        calendar.time_zone = body.time_zone
        changed.append("time_zone")
    if body.weekly is not None:
        _validate_weekly(body.weekly)
        calendar.weekly = _weekly_json(body.weekly)
        changed.append("weekly")
    if body.exceptions is not None:
        _validate_exceptions(body.exceptions)
        calendar.exceptions.clear()
        # The old rows go first: a new row for the same date would break the (calendar, day) uniqueness.
        await session.flush()
        calendar.exceptions.extend(_exception_rows(body.exceptions))
        changed.append("exceptions")
    calendar.updated_at = utcnow()
    await session.flush()
    audit.record(session, actor, "calendar.update", "calendar", calendar.id, name=calendar.name, changed=changed)
    return calendar


async def _queues_using(session: AsyncSession, calendar_id: int) -> list[str]:
    return [f"queue {slug}" for slug in await repository.queues_using(session, calendar_id)]


CalendarUsers = Callable[[AsyncSession, int], Awaitable[list[str]]]
"""(session, calendar id) -> what uses the calendar, named for the admin ("queue billing", "SLA policy VIP")."""
CALENDAR_USERS: list[CalendarUsers] = [_queues_using, sla_usage.policies_using]
"""Everything that counts in a calendar's hours: a calendar in use by any of them cannot be deleted."""


async def users_of(session: AsyncSession, calendar_id: int) -> list[str]:
    return [name for users in CALENDAR_USERS for name in await users(session, calendar_id)]


async def delete(session: AsyncSession, calendar_id: int, actor: User) -> None:
    """Raises:
        ConflictError: a queue (or anything in CALENDAR_USERS) counts in this calendar's hours.
    """
    calendar = await get(session, calendar_id)
    used_by = await users_of(session, calendar_id)
    if used_by:
        raise ConflictError(f"calendar {calendar.name!r} is in use by {', '.join(used_by)}: give them another "
                            "calendar first", calendar_id=calendar_id, used_by=used_by)
    await repository.delete(session, calendar)
    audit.record(session, actor, "calendar.delete", "calendar", calendar_id, name=calendar.name)


# -- shipped defaults -------------------------------------------------------------------------------------------


def load_shipped(path: Path | None = None) -> CalendarCreate:
    """The Russian production calendar file as a calendar to create (every year in it, provisional ones too)."""
    with (path or DATA_DIR / "ru_production_2026_2027.yaml").open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    exceptions = [CalendarExceptionIn(day=day, hours=[] if entry.get("closed") else entry["hours"],
                                      note=entry.get("note"))
                  for year in data["years"].values() for day, entry in year["days"].items()]
    return CalendarCreate(name=data["name"], time_zone=data["time_zone"],
                          weekly=WeeklyHours.model_validate(data["weekly"]), exceptions=exceptions)


def always_open() -> CalendarCreate:
    return CalendarCreate(name=ALWAYS_OPEN, time_zone="UTC",
                          weekly=WeeklyHours.model_validate({name: ["00:00-24:00"] for name in WEEKDAYS}))


async def seed_defaults(session: AsyncSession) -> bool:
    """On a database without calendars, create the shipped ones; True if it did.

    Only an empty table is seeded, so an admin's edits and deletions of the defaults stay as they made them.
    """
    if await repository.count(session) > 0:
        return False
    for body in (load_shipped(), always_open()):
        await create(session, body, actor=None)
    return True
