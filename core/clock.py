"""The one time source: wall time for what is stored, a monotonic counter for what is in memory.

Passed in, never read deep inside the rules, so tests move time forward instead of sleeping.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Protocol

from core.db.base import utcnow


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware wall time (UTC)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""


class SystemClock:
    def now(self) -> datetime:
        return utcnow()

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()


class ManualClock:
    """A clock that moves only when told to (tests, simulations)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or utcnow()
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds
