"""The one time source: wall time for what is stored, a monotonic counter for what is in memory.

Passed in, never read deep inside the rules, so tests move time forward instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Protocol

from core.db.base import utcnow


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware wall time (UTC)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` on this clock (a manual clock wakes the sleeper when a test moves it far enough)."""


class SystemClock:
    def now(self) -> datetime:
        return utcnow()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


SYSTEM_CLOCK = SystemClock()


class ManualClock:
    """A clock that moves only when told to (tests, simulations)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or utcnow()
        self._mono = 1000.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        entry = (self._mono + seconds, asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        try:
            await entry[1]
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    @property
    def sleepers(self) -> int:
        """How many coroutines wait on this clock (tests wait for a job to be asleep before moving time)."""
        return sum(not future.done() for _, future in self._sleepers)

    def pending_sleeps(self) -> list[float]:
        """Seconds each waiting coroutine has left to wait, shortest first."""
        return sorted(deadline - self._mono for deadline, future in self._sleepers if not future.done())

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds
        for deadline, future in list(self._sleepers):
            if deadline <= self._mono and not future.done():
                future.set_result(None)
