"""Exclusive leases across processes: one reader per mailbox (or Telegram bot in polling mode), however many
workers and instances run.

On PostgreSQL a lease is a session advisory lock on a connection the holder keeps for as long as it holds the
lease: it ends with that connection, so the lease of a crashed or partitioned instance frees itself and a
standby takes over. SQLite serves one process (`switchboard serve` runs one worker on it): the lease is always
granted there.
"""

from __future__ import annotations

import contextlib
import hashlib
import weakref
from collections.abc import AsyncIterator

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

_LEASE_ENGINES: weakref.WeakKeyDictionary[AsyncEngine, AsyncEngine] = weakref.WeakKeyDictionary()
# The leases this process holds, for /health and /metrics (a lease leaves when its block ends).
_HELD: weakref.WeakSet[Lease] = weakref.WeakSet()


def _lease_engine(engine: AsyncEngine) -> AsyncEngine:
    """Leases keep their connections for hours: they come from a pool-less engine of their own, so many mailboxes
    never take the connections requests need."""
    lease_engine = _LEASE_ENGINES.get(engine)
    if lease_engine is None:
        lease_engine = _LEASE_ENGINES[engine] = create_async_engine(engine.url, poolclass=NullPool)
    return lease_engine


class LeaseLost(Exception):
    """The connection that held the lease is gone: another process may hold it now."""


def lease_key(name: str) -> int:
    """A stable signed 64-bit key for a lease name (advisory locks are keyed by bigint)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Lease:
    """Whether this process holds the lease; `check()` proves it still does."""

    def __init__(self, name: str, held: bool, conn: AsyncConnection | None = None) -> None:
        self.name = name
        self.held = held
        self._conn = conn
        if held:
            _HELD.add(self)

    async def check(self) -> None:
        """Raise LeaseLost if the lease's connection no longer works (the database released the lock)."""
        if self._conn is None or not self.held:
            return
        try:
            await self._conn.execute(text("SELECT 1"))
            await self._conn.commit()
        except Exception as exc:
            self.held = False
            raise LeaseLost(f"lost the lease {self.name!r}: {type(exc).__name__}: {exc}") from exc


@contextlib.asynccontextmanager
async def exclusive(engine: AsyncEngine, name: str, *, brief: bool = False) -> AsyncIterator[Lease]:
    """Try to take the lease `name` for the duration of the block; never waits for it.

    The caller does its work only when `lease.held`; otherwise it stands by and tries again later. A `brief`
    lease (a leased job's one tick: the assignment every second, the KPI fold, sweeps) takes a connection of
    `engine`'s own pool instead of a new one: a new connection per tick cost ~5 ms of the worker's CPU and a
    PostgreSQL backend start (~50 ms on a busy machine), every second on every worker.
    """
    if engine.dialect.name != "postgresql":
        lease = Lease(name, held=True)
        try:
            yield lease
        finally:
            _HELD.discard(lease)
        return
    key = lease_key(name)
    async with (engine if brief else _lease_engine(engine)).connect() as conn:
        # A connection goes back to a pool only once it surely holds no lock: a lock left on a pooled connection
        # would be nobody's lease for ever (and granted again to whoever reused it). Anything else - a failed or
        # cancelled try or unlock - closes it, which ends the lock for sure.
        released = False
        try:
            held = bool(await conn.scalar(select(func.pg_try_advisory_lock(key))))
            await conn.commit()  # the lock belongs to the session, not to a transaction
            lease = Lease(name, held, conn)
            try:
                yield lease
            finally:
                _HELD.discard(lease)
                with contextlib.suppress(Exception):  # a failed unlock: the connection is closed below
                    if held:
                        await conn.execute(select(func.pg_advisory_unlock(key)))
                        await conn.commit()
                    released = True
        finally:
            if not released:
                with contextlib.suppress(Exception):
                    await conn.invalidate()


def held_leases() -> list[str]:
    """Names of the leases this process holds now (sorted)."""
    return sorted({lease.name for lease in list(_HELD) if lease.held})
