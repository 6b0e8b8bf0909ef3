"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from core.db.timeout import install_sqlite_guard, watch_sqlite_engine

T = TypeVar("T")


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, echo: bool = False, pool_size: int = 20) -> AsyncEngine:
    """Create the async engine; SQLite gets WAL, a busy timeout and foreign keys on."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # One connection: SQLite has a single writer anyway, and one connection avoids "database is locked"
        # between concurrent async sessions; transactions queue on the pool instead.
        engine = create_async_engine(url, echo=echo, pool_size=1, max_overflow=0, pool_timeout=60)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
            # SQLite's lower() (what ILIKE compiles to) folds ASCII only; searches for "котова" must find
            # "Котова" as they do on PostgreSQL.
            dbapi_conn.create_function("lower", 1, _unicode_lower, deterministic=True)
            install_sqlite_guard(engine, dbapi_conn, _record)

        watch_sqlite_engine(engine)
        return engine
    engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size)
    check_on_checkout(engine)
    return engine


PING_AFTER_IDLE_SECONDS = 5.0
"""A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out."""


def check_on_checkout(engine: AsyncEngine, ping_after: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Hand out only live connections, without a round trip for the ones just used.

    SQLAlchemy's `pool_pre_ping` pings every checkout: with asyncpg that is three round trips (BEGIN, a statement,
    ROLLBACK), a quarter of all the statements a busy ingest sends. Here a connection the server closed (a
    restart, a terminated backend: asyncpg saw the socket close) is replaced at no cost; one idle in the pool for
    more than `ping_after` seconds is pinged as before (a connection can also die silently, e.g. behind a network
    device); one checked in a moment ago is handed out as it is. Should it still have died meanwhile, its first
    statement fails as a disconnect: the pool is invalidated and the caller sees an outage (a 503, a redelivery),
    as with any connection lost mid-transaction.
    """

    @event.listens_for(engine.sync_engine, "connect")
    @event.listens_for(engine.sync_engine, "checkin")
    def _fresh(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        raw = getattr(dbapi_conn, "_connection", None)
        if raw is not None and raw.is_closed():
            raise DisconnectionError("the server closed this connection")
        idle = time.monotonic() - record.info.get("checked_in", float("-inf"))
        if idle > ping_after:
            try:
                dbapi_conn.ping()
            except Exception as exc:  # the driver's error, whatever it is: this connection is not usable
                raise DisconnectionError(f"ping failed: {type(exc).__name__}: {exc}") from exc


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def finish_even_if_cancelled(work: Coroutine[Any, Any, T]) -> T:
    """Run a unit of database work (one transaction) to its end even if the caller is cancelled meanwhile, then
    honour the cancellation.

    A job stopped mid-statement would otherwise abandon its connection mid-transaction: on SQLite that
    connection keeps the write lock until the garbage collector closes it, and every writer after it (the next
    instance on the same file, a restarted app) fails with "database is locked".
    """
    task = asyncio.ensure_future(work)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError as err:
            if task.done():
                raise
            cancelled = err
        else:
            break
    if cancelled is not None:
        raise cancelled
    return result
