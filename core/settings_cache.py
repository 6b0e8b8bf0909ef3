"""Per-process copies of small tables of settings that the hot path reads on every batch and admins rarely change
(the declared intent actions, the SLA policies), so an ingest batch does not spend a round trip on each.

A copy is read again:
- at once in this process after a transaction that changed its table commits: the writer calls
  `changed(session, name)` inside that transaction, and the copies of `name` are dropped when it commits (a rolled
  back change drops nothing);
- at most `max_age` seconds after it was read, whatever happened: a change saved through another instance (or
  anything else writing to the database) is seen within that time, with no event to lose and one small read per
  interval instead of one per batch (CoreSettings.settings_cache_seconds, default 1 s);
- when the caller drops it: a batch that failed (perhaps on a policy deleted through another instance a moment ago)
  is retried with fresh copies.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

T = TypeVar("T")

INTENT_ACTIONS = "intent_actions"
SLA_POLICIES = "sla_policies"
OPEN_INCIDENTS = "open_incidents"

_INFO_KEY = "settings_cache.changed"
# name -> how many committed transactions of this process changed it (a copy knows the count it was read at)
_generations: dict[str, int] = {}


def changed(session: AsyncSession, name: str) -> None:
    """This transaction changes the table behind the copies called `name`: drop them when it commits."""
    session.info.setdefault(_INFO_KEY, set()).add(name)


def generation(name: str) -> int:
    return _generations.get(name, 0)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for name in session.info.pop(_INFO_KEY, ()):
        _generations[name] = _generations.get(name, 0) + 1


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_INFO_KEY, None)


class CachedSetting(Generic[T]):
    """One table's copy: `get` returns it, reading it with `load` (in the caller's session) when it is missing,
    changed by a commit of this process since, or older than `max_age` seconds."""

    def __init__(self, name: str, load: Callable[[AsyncSession], Awaitable[T]], max_age: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.max_age = max_age
        self.loads = 0
        self._load = load
        self._monotonic = monotonic
        self._value: T | None = None
        self._generation = -1
        self._read_at = 0.0

    async def get(self, session: AsyncSession) -> T:
        value, now, current = self._value, self._monotonic(), generation(self.name)
        if value is None or current != self._generation or now - self._read_at >= self.max_age:
            # The generation is taken before the read: a change committed meanwhile makes the next call read again.
            value = await self._load(session)
            self._value, self._generation, self._read_at = value, current, now
            self.loads += 1
        return value

    def drop(self) -> None:
        """Forget the copy: the next `get` reads it."""
        self._value = None
