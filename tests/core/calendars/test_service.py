"""Calendar CRUD on both databases: validation with reasons, unique names, exceptions replaced, the seed."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit import repository as audit_repo
from core.calendars import service as calendars
from core.calendars.business_time import add_business_time, is_open
from core.calendars.schemas import CalendarCreate, CalendarExceptionIn, CalendarUpdate, WeeklyHours
from core.errors import ConflictError, NotFoundError, ValidationFailedError
from core.users.models import Role, User
from tests.conftest import make_user

Maker = async_sessionmaker[AsyncSession]
OFFICE = WeeklyHours(mon=["09:00-13:00", "14:00-18:00"], tue=["09:00-18:00"], wed=["09:00-18:00"],
                     thu=["09:00-18:00"], fri=["09:00-18:00"])


async def _admin(sessionmaker: Maker) -> User:
    admin, _ = await make_user(sessionmaker, Role.admin, "admin@test.example")
    return admin


async def _create(sessionmaker: Maker, body: CalendarCreate, actor: User) -> int:
    async with sessionmaker() as session, session.begin():
        return (await calendars.create(session, body, actor)).id


async def test_create_read_update_delete(sessionmaker: Maker) -> None:
    admin = await _admin(sessionmaker)
    body = CalendarCreate(name="Billing", time_zone="Asia/Yekaterinburg", weekly=OFFICE,
                          exceptions=[CalendarExceptionIn(day=date(2026, 3, 10), note="Training day"),
                                      CalendarExceptionIn(day=date(2026, 3, 14), hours=["10:00-15:00"])])
    calendar_id = await _create(sessionmaker, body, admin)
    async with sessionmaker() as session:
        read = calendars.read(await calendars.get(session, calendar_id))
        business = calendars.business_calendar(await calendars.get(session, calendar_id))
    assert read.weekly.mon == ["09:00-13:00", "14:00-18:00"] and read.weekly.sat == []
    assert [(e.day, e.hours, e.note) for e in read.exceptions] == [
        (date(2026, 3, 10), [], "Training day"), (date(2026, 3, 14), ["10:00-15:00"], None)]
    ekb = ZoneInfo("Asia/Yekaterinburg")
    assert not is_open(business, datetime(2026, 3, 10, 12, tzinfo=ekb))
    assert is_open(business, datetime(2026, 3, 14, 12, tzinfo=ekb))  # a working Saturday
    assert add_business_time(business, datetime(2026, 3, 9, 12, 30, tzinfo=ekb),
                             timedelta(hours=1)) == datetime(2026, 3, 9, 14, 30, tzinfo=ekb)

    async with sessionmaker() as session, session.begin():
        await calendars.update(session, calendar_id, CalendarUpdate(
            name="Billing office", exceptions=[CalendarExceptionIn(day=date(2026, 3, 10), hours=["09:00-12:00"])]),
            admin)
    async with sessionmaker() as session:
        read = calendars.read(await calendars.get(session, calendar_id))
    assert (read.name, read.time_zone) == ("Billing office", "Asia/Yekaterinburg")
    assert [(e.day, e.hours) for e in read.exceptions] == [(date(2026, 3, 10), ["09:00-12:00"])]

    async with sessionmaker() as session, session.begin():
        await calendars.delete(session, calendar_id, admin)
    async with sessionmaker() as session:
        with pytest.raises(NotFoundError):
            await calendars.get(session, calendar_id)
        actions = [e.action for e in await audit_repo.list_entries(
            session, entity_type="calendar", entity_id=str(calendar_id), limit=10, offset=0)]
    assert sorted(actions) == ["calendar.create", "calendar.delete", "calendar.update"]


@pytest.mark.parametrize(("change", "reason"), [
    ({"time_zone": "Mars/Olympus"}, "unknown time zone"),
    ({"time_zone": "../../etc/passwd"}, "unknown time zone"),
    ({"weekly": WeeklyHours(mon=["18:00-09:00"])}, "weekly.mon: interval 18:00-09:00 ends before it starts"),
    ({"weekly": WeeklyHours(tue=["09:00-13:00", "12:00-18:00"])}, "weekly.tue: intervals 09:00-13:00 and "
                                                                  "12:00-18:00 overlap"),
    ({"weekly": WeeklyHours()}, "never open"),
    ({"exceptions": [CalendarExceptionIn(day=date(2026, 5, 1)), CalendarExceptionIn(day=date(2026, 5, 1))]},
     "2026-05-01 is listed twice"),
    ({"exceptions": [CalendarExceptionIn(day=date(2026, 5, 8), hours=["09:00-09:00"])]},
     "exceptions.2026-05-08: interval 09:00-09:00 ends before it starts"),
])
async def test_bad_calendars_are_refused_with_the_reason(sessionmaker: Maker, change: dict[str, object],
                                                         reason: str) -> None:
    admin = await _admin(sessionmaker)
    body = CalendarCreate.model_validate({"name": "Bad", "time_zone": "Europe/Moscow", "weekly": OFFICE,
                                          **change})
    with pytest.raises(ValidationFailedError, match=reason):
        await _create(sessionmaker, body, admin)
    calendar_id = await _create(sessionmaker, CalendarCreate(name="Good", time_zone="UTC", weekly=OFFICE), admin)
    with pytest.raises(ValidationFailedError, match=reason):
        async with sessionmaker() as session, session.begin():
            await calendars.update(session, calendar_id, CalendarUpdate.model_validate(change), admin)


async def test_names_are_unique(sessionmaker: Maker) -> None:
    admin = await _admin(sessionmaker)
    await _create(sessionmaker, CalendarCreate(name="Office", time_zone="UTC", weekly=OFFICE), admin)
    other = await _create(sessionmaker, CalendarCreate(name="Other", time_zone="UTC", weekly=OFFICE), admin)
    with pytest.raises(ConflictError, match="already exists"):
        await _create(sessionmaker, CalendarCreate(name="Office", time_zone="UTC", weekly=OFFICE), admin)
    with pytest.raises(ConflictError, match="already exists"):
        async with sessionmaker() as session, session.begin():
            await calendars.update(session, other, CalendarUpdate(name="Office"), admin)


async def test_the_defaults_are_seeded_once_into_an_empty_table(sessionmaker: Maker) -> None:
    async with sessionmaker() as session, session.begin():
        assert await calendars.seed_defaults(session) is True
    async with sessionmaker() as session, session.begin():
        assert await calendars.seed_defaults(session) is False
    async with sessionmaker() as session:
        names = [c.name for c in await calendars.list_all(session)]
        russia = await calendars.get_by_name(session, calendars.RUSSIA_OFFICE)
        always = await calendars.get_by_name(session, calendars.ALWAYS_OPEN)
    assert names == [calendars.ALWAYS_OPEN, calendars.RUSSIA_OFFICE]
    msk = ZoneInfo("Europe/Moscow")
    business = calendars.business_calendar(russia)
    assert not is_open(business, datetime(2026, 1, 9, 12, tzinfo=msk))   # Saturday 3 January moved here
    assert not is_open(business, datetime(2026, 11, 3, 17, 30, tzinfo=msk))  # pre-holiday, an hour shorter
    assert is_open(calendars.business_calendar(always), datetime(2027, 1, 1, 3, tzinfo=msk))
