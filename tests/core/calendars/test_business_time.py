"""Business-time arithmetic: weekends, holidays, shortened days, starts out of hours, DST, long spans."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.calendars.business_time import (
    BusinessCalendar,
    add_business_time,
    business_time_between,
    is_open,
    next_opening,
)
from core.calendars.models import Calendar, CalendarException
from core.calendars.service import always_open, business_calendar, load_shipped

MSK = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = (((540, 1080),),) * 5 + ((), ())  # Mon-Fri 09:00-18:00


def office(zone: ZoneInfo, exceptions: dict[date, tuple[tuple[int, int], ...]] | None = None) -> BusinessCalendar:
    return BusinessCalendar(zone=zone, weekly=OFFICE, exceptions=exceptions or {})


def shipped(body_name: str = "russia") -> BusinessCalendar:
    body = load_shipped() if body_name == "russia" else always_open()
    model = Calendar(name=body.name, time_zone=body.time_zone, weekly=body.weekly.model_dump(),
                     exceptions=[CalendarException(day=e.day, intervals=e.hours, note=e.note)
                                 for e in body.exceptions])
    return business_calendar(model)


RUSSIA = shipped()
ALWAYS = shipped("24/7")


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MSK)  # type: ignore[misc]


def test_within_one_day() -> None:
    cal = office(MSK)
    assert add_business_time(cal, msk(2026, 3, 3, 10), timedelta(hours=2)) == msk(2026, 3, 3, 12)
    assert add_business_time(cal, msk(2026, 3, 3, 10), timedelta(hours=8)) == msk(2026, 3, 3, 18)


def test_over_the_evening_and_the_weekend() -> None:
    cal = office(MSK)
    # Friday 17:00 + 2 h: one hour on Friday, one on Monday.
    assert add_business_time(cal, msk(2026, 3, 6, 17), timedelta(hours=2)) == msk(2026, 3, 9, 10)
    assert business_time_between(cal, msk(2026, 3, 6, 17), msk(2026, 3, 9, 10)) == timedelta(hours=2)


def test_a_start_out_of_hours_waits_for_the_opening() -> None:
    cal = office(MSK)
    assert add_business_time(cal, msk(2026, 3, 3, 6, 30), timedelta(minutes=30)) == msk(2026, 3, 3, 9, 30)
    assert add_business_time(cal, msk(2026, 3, 7, 12), timedelta(hours=1)) == msk(2026, 3, 9, 10)  # Saturday
    assert add_business_time(cal, msk(2026, 3, 3, 20), timedelta(hours=1)) == msk(2026, 3, 4, 10)
    assert add_business_time(cal, msk(2026, 3, 7, 12), timedelta(0)) == msk(2026, 3, 7, 12)


def test_is_open_and_next_opening() -> None:
    cal = office(MSK)
    assert is_open(cal, msk(2026, 3, 3, 9)) and is_open(cal, msk(2026, 3, 3, 17, 59))
    assert not is_open(cal, msk(2026, 3, 3, 18)) and not is_open(cal, msk(2026, 3, 7, 12))
    assert next_opening(cal, msk(2026, 3, 3, 18)) == msk(2026, 3, 4, 9)
    assert next_opening(cal, msk(2026, 3, 6, 18, 30)) == msk(2026, 3, 9, 9)
    assert next_opening(cal, msk(2026, 3, 3, 11)) == msk(2026, 3, 3, 11)


def test_the_russian_calendar_knows_holidays_transfers_and_shortened_days() -> None:
    # New Year holidays 2026 run to Sunday 11 January (9 January is Saturday 3 January moved).
    assert next_opening(RUSSIA, msk(2026, 1, 1, 12)) == msk(2026, 1, 12, 9)
    # Monday 9 March is Sunday 8 March moved; Friday 6 March 17:00 + 2 h is Tuesday 10:00.
    assert add_business_time(RUSSIA, msk(2026, 3, 6, 17), timedelta(hours=2)) == msk(2026, 3, 10, 10)
    # 30 April is one hour shorter, 1-3 May closed.
    assert not is_open(RUSSIA, msk(2026, 4, 30, 17, 30))
    assert add_business_time(RUSSIA, msk(2026, 4, 30, 16), timedelta(hours=2)) == msk(2026, 5, 4, 10)
    # 31 December 2026 is Sunday 4 January moved: closed.
    assert next_opening(RUSSIA, msk(2026, 12, 30, 18)) == msk(2027, 1, 11, 9)


def test_2026_has_the_official_number_of_working_hours() -> None:
    # Production calendar 2026, 40-hour week: 247 working days, 1972 hours (four pre-holiday days an hour short).
    hours = business_time_between(RUSSIA, msk(2026, 1, 1), msk(2027, 1, 1))
    assert hours == timedelta(hours=1972) + timedelta(hours=247)  # 9 hours a day (09:00-18:00 with lunch)


def test_dst_spring_forward_and_fall_back_count_real_hours() -> None:
    always_berlin = BusinessCalendar(zone=BERLIN, weekly=(((0, 1440),),) * 7)
    # 29 March 2026: 02:00 becomes 03:00, the day has 23 hours.
    day = datetime(2026, 3, 29, tzinfo=BERLIN)
    assert business_time_between(always_berlin, day, datetime(2026, 3, 30, tzinfo=BERLIN)) == timedelta(hours=23)
    # 25 October 2026: 03:00 becomes 02:00 again, 25 hours.
    autumn = datetime(2026, 10, 25, tzinfo=BERLIN)
    assert business_time_between(always_berlin, autumn,
                                 datetime(2026, 10, 26, tzinfo=BERLIN)) == timedelta(hours=25)
    # Office hours keep their wall-clock times across the switch: Friday 17:00 + 2 h is Monday 10:00 local.
    cal = office(BERLIN)
    due = add_business_time(cal, datetime(2026, 3, 27, 17, tzinfo=BERLIN), timedelta(hours=2))
    assert due == datetime(2026, 3, 30, 10, tzinfo=BERLIN)
    assert due.astimezone(BERLIN).utcoffset() == timedelta(hours=2)
    # A night shift across the switch: 01:00-04:00 on the spring day holds 2 real hours.
    night = BusinessCalendar(zone=BERLIN, weekly=(((60, 240),),) * 7)
    assert business_time_between(night, day, datetime(2026, 3, 29, 12, tzinfo=BERLIN)) == timedelta(hours=2)


def test_24_7_joins_midnights_into_one_open_span() -> None:
    start = datetime(2026, 6, 1, 23, 30, tzinfo=UTC)
    assert add_business_time(ALWAYS, start, timedelta(days=10)) == start + timedelta(days=10)
    assert is_open(ALWAYS, datetime(2026, 6, 2, tzinfo=UTC))


def test_durations_spanning_many_days() -> None:
    cal = office(MSK)
    # 45 working hours = 5 days: Monday 09:00 -> next Monday 09:00... the end of Friday 18:00.
    assert add_business_time(cal, msk(2026, 3, 2, 9), timedelta(hours=45)) == msk(2026, 3, 6, 18)
    # A year of office time from the first working day of 2026 ends where 2027's count says.
    year = business_time_between(RUSSIA, msk(2026, 1, 1), msk(2027, 1, 1))
    assert add_business_time(RUSSIA, msk(2026, 1, 1), year) == msk(2026, 12, 30, 18)


def test_naive_datetimes_and_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_time(RUSSIA, datetime(2026, 3, 3, 10), timedelta(hours=1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="negative"):
        add_business_time(RUSSIA, msk(2026, 3, 3, 10), timedelta(hours=-1))
    assert business_time_between(office(MSK), msk(2026, 3, 3, 12), msk(2026, 3, 3, 10)) == -timedelta(hours=2)


def test_a_calendar_that_never_opens_is_an_error_not_a_hang() -> None:
    closed = BusinessCalendar(zone=MSK, weekly=((),) * 7, exceptions={date(2026, 3, 3): ((540, 600),)})
    assert add_business_time(closed, msk(2026, 3, 1), timedelta(minutes=60)) == msk(2026, 3, 3, 10)
    with pytest.raises(ValueError, match="no open hours"):
        add_business_time(closed, msk(2026, 3, 1), timedelta(minutes=61))


instants = st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2028, 1, 31),  # noqa: DTZ001
                        timezones=st.just(UTC))
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60))
calendars = st.sampled_from([RUSSIA, ALWAYS, office(BERLIN), BusinessCalendar(zone=BERLIN, weekly=(((60, 240),),) * 7)])


@settings(max_examples=200, deadline=None)
@given(calendars, instants, durations)
def test_between_undoes_add(cal: BusinessCalendar, start: datetime, duration: timedelta) -> None:
    assert business_time_between(cal, start, add_business_time(cal, start, duration)) == duration


@settings(max_examples=150, deadline=None)
@given(calendars, instants, durations, durations)
def test_add_is_monotonic_in_the_duration(cal: BusinessCalendar, start: datetime, d1: timedelta,
                                          d2: timedelta) -> None:
    low, high = sorted((d1, d2))
    assert add_business_time(cal, start, low) <= add_business_time(cal, start, high)


@settings(max_examples=150, deadline=None)
@given(calendars, instants, instants, durations)
def test_add_is_monotonic_in_the_start(cal: BusinessCalendar, a: datetime, b: datetime, d: timedelta) -> None:
    early, late = sorted((a, b))
    assert add_business_time(cal, early, d) <= add_business_time(cal, late, d)
    assert business_time_between(cal, early, late) >= timedelta(0)


def test_hours_inside_the_spring_forward_gap_are_not_counted_twice() -> None:
    # 02:00-02:30 does not exist on 29 March 2026 in Berlin; it lands on 03:00-03:30, which 03:00-04:00 covers.
    gap = BusinessCalendar(zone=BERLIN, weekly=(((120, 150), (180, 240)),) * 7)
    day = datetime(2026, 3, 29, tzinfo=BERLIN)
    assert business_time_between(gap, day, day + timedelta(days=1)) == timedelta(hours=1)
    assert business_time_between(gap, day - timedelta(days=1), day) == timedelta(hours=1, minutes=30)
