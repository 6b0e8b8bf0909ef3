"""Business-time arithmetic on a calendar: pure functions, the ground SLA counts in.

A calendar's hours are local wall-clock intervals per weekday, overridden per date by exceptions (a holiday
is a date with no intervals, a shortened or transferred working day a date with its own). Every answer is an
instant in UTC; durations are real elapsed time, so a day on which the clocks change counts the hours the
people in that zone actually worked (Berlin's 00:00-24:00 on the last Sunday of March is 23 hours).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60

Interval = tuple[int, int]
"""Local minutes since midnight, start inclusive, end exclusive: (540, 1080) is 09:00-18:00; 1440 is 24:00."""


@dataclass(frozen=True)
class BusinessCalendar:
    """The hours of one calendar, ready to compute with (build it with `from_model` in the service)."""

    zone: ZoneInfo
    weekly: tuple[tuple[Interval, ...], ...]
    """Seven entries, Monday first, each sorted and not overlapping."""
    exceptions: Mapping[date, tuple[Interval, ...]] = field(default_factory=dict)
    """A date's own intervals, replacing its weekday's; an empty tuple is a closed day."""

    def __post_init__(self) -> None:
        if len(self.weekly) != 7:
            raise ValueError("weekly hours need seven days, Monday first")

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        found = self.exceptions.get(day)
        return found if found is not None else self.weekly[day.weekday()]

    @property
    def last_exception(self) -> date | None:
        return max(self.exceptions) if self.exceptions else None


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _local_instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock minute; 24:00 is the next day's midnight.

    A time in the spring-forward gap resolves with the offset in force before it (zoneinfo's fold=0), which
    lands after the gap; an ambiguous autumn time is its first occurrence.
    """
    if minute >= MINUTES_PER_DAY:
        day, minute = day + timedelta(days=1), minute - MINUTES_PER_DAY
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    return local.astimezone(UTC)


def _spans_from(calendar: BusinessCalendar, day: date) -> Iterator[tuple[datetime, datetime]]:
    """Open spans in UTC, in time order, one per interval, from the local date `day` on.

    Spans that touch (23:00-24:00 then 00:00-01:00) stay separate: every answer comes out the same, and a
    24/7 calendar still yields one span a day instead of merging for ever. Raises ValueError when a whole week
    past the last exception has no open hours: weekly hours repeat, so the calendar would never open again.
    """
    last = calendar.last_exception
    quiet_days = 0
    previous_end: datetime | None = None
    while True:
        opened = False
        for start_minute, end_minute in calendar.intervals_on(day):
            start = _local_instant(day, start_minute, calendar.zone)
            end = _local_instant(day, end_minute, calendar.zone)
            # Wall-clock times in a spring-forward gap land after it and may run into the next interval's
            # real time: count each real instant once.
            if previous_end is not None:
                start = max(start, previous_end)
            if end <= start:
                continue
            opened = True
            previous_end = end
            yield start, end
        quiet_days = 0 if opened or (last is not None and day <= last) else quiet_days + 1
        if quiet_days > 7:
            raise ValueError("the calendar has no open hours")
        day += timedelta(days=1)


def _spans_at(calendar: BusinessCalendar, at: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Open spans that end after `at`, clipped to start no earlier than it."""
    # Intervals of earlier local dates end by this date's midnight, at or before `at`.
    first_day = at.astimezone(calendar.zone).date()
    for start, end in _spans_from(calendar, first_day):
        if end <= at:
            continue
        yield max(start, at), end


def is_open(calendar: BusinessCalendar, at: datetime) -> bool:
    """Whether `at` falls within the calendar's open hours."""
    _require_aware(at, "at")
    start, _ = next(_spans_at(calendar, at))
    return start == at


def next_opening(calendar: BusinessCalendar, at: datetime) -> datetime:
    """The first instant at or after `at` when the calendar is open (`at` itself when open): "back at 09:00"."""
    _require_aware(at, "at")
    start, _ = next(_spans_at(calendar, at))
    return start


def add_business_time(calendar: BusinessCalendar, start: datetime, duration: timedelta) -> datetime:
    """The instant when `duration` of open hours has passed since `start` (a start out of hours waits).

    A zero duration is due at `start` itself, open or not.
    """
    _require_aware(start, "start")
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    start = start.astimezone(UTC)
    if duration == timedelta(0):
        return start
    left = duration
    for span_start, span_end in _spans_at(calendar, start):
        length = span_end - span_start
        if left <= length:
            return span_start + left
        left -= length
    raise AssertionError("unreachable: the spans never end")  # pragma: no cover


def business_time_between(calendar: BusinessCalendar, a: datetime, b: datetime) -> timedelta:
    """Open hours from `a` to `b`; negative when `b` is before `a`."""
    _require_aware(a, "a")
    _require_aware(b, "b")
    if b < a:
        return -business_time_between(calendar, b, a)
    total = timedelta(0)
    for span_start, span_end in _spans_at(calendar, a):
        if span_start >= b:
            break
        total += min(span_end, b) - span_start
    return total


def parse_clock(text: str) -> int:
    """"09:30" -> 570 minutes; "24:00" -> 1440."""
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def format_clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def overlaps(intervals: Sequence[Interval]) -> list[tuple[Interval, Interval]]:
    """Pairs of intervals of one day that overlap (touching ends do not)."""
    ordered = sorted(intervals)
    return [(a, b) for a, b in pairwise(ordered) if b[0] < a[1]]
