"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
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
    return create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


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
