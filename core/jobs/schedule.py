"""When a job runs: every N seconds, or every day at a time of day in a time zone.

A schedule only answers "when next, after this moment"; the registry does the waiting on the injected clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Schedule(Protocol):
    def first_run(self, now: datetime) -> datetime:
        """When the job runs for the first time once started at `now`."""

    def next_run(self, now: datetime) -> datetime:
        """When the job runs next after a run that ended at `now`."""


@dataclass(frozen=True)
class Every:
    """Every `seconds` after the end of the previous run; the first run `first_delay` after start (default: at
    once)."""

    seconds: float
    first_delay: float = 0.0

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError("an interval must be positive")

    def first_run(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.first_delay)

    def next_run(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class DailyAt:
    """Every day at a wall-clock time in a time zone (across DST changes: a time that does not exist that day
    runs at the first instant after it)."""

    at: time
    tz: str = "UTC"

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.tz!r}") from exc

    def first_run(self, now: datetime) -> datetime:
        return self.next_run(now)

    def next_run(self, now: datetime) -> datetime:
        zone = ZoneInfo(self.tz)
        local = now.astimezone(zone)
        candidate = datetime.combine(local.date(), self.at, tzinfo=zone)
        if candidate <= local:
            candidate = datetime.combine(local.date() + timedelta(days=1), self.at, tzinfo=zone)
        # Round trip through UTC: a time skipped by a DST change lands just after the gap.
        return candidate.astimezone(now.tzinfo)


_UNITS = {"s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60, "minutes": 60,
          "h": 3600, "hour": 3600, "hours": 3600}
_EVERY = re.compile(r"^every\s+(\d+(?:\.\d+)?)\s*([a-z]+)$", re.IGNORECASE)
_DAILY = re.compile(r"^every\s+day\s+at\s+(\d{1,2}):(\d{2})(?:\s+in\s+(\S+))?$", re.IGNORECASE)


def parse_schedule(spec: str) -> Every | DailyAt:
    """'every 30s', 'every 5 minutes', 'every 2h', 'every day at 03:00', 'every day at 03:00 in Europe/Moscow'."""
    text = " ".join(spec.strip().split())
    daily = _DAILY.match(text)
    if daily:
        hour, minute = int(daily.group(1)), int(daily.group(2))
        if hour > 23 or minute > 59:
            raise ValueError(f"not a time of day: {spec!r}")
        return DailyAt(time(hour, minute), daily.group(3) or "UTC")
    every = _EVERY.match(text)
    if every and every.group(2).lower() in _UNITS:
        return Every(float(every.group(1)) * _UNITS[every.group(2).lower()])
    raise ValueError(f"not a schedule: {spec!r} (try 'every 30s' or 'every day at 03:00 in Europe/Moscow')")
